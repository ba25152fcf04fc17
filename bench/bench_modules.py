"""Which modules `render` and `validate` of a plain config load: hpc_tf's own, and everything (run by hand).

    python bench/bench_modules.py [--repo CHECKOUT] [--config configs/digits.yaml]

Runs `python -X importtime -m hpc_tf COMMAND CONFIG` in a fresh interpreter with the checkout first on its path and
lists the hpc_tf modules it imported; `--repo` points at another checkout (e.g. a `git worktree` of an older commit)
for a before/after comparison. A plain config should load no sweep, role or requeue module it does not use.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Not "components": one allocation is a job of one component, the base model every render uses (an older checkout's
# `core.hetjob` is still counted, by "hetjob").
FEATURE_WORDS = (
    "sweep",
    "hyperdrive",
    "bayes",
    "early_stop",
    "sampling",
    "policies",
    "hetjob",
    "role",
    "requeue",
    "trial",
)


def loaded(repo: Path, command: str, config: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "hpc_tf",
            command,
            config,
            *(["--backend", "slurm"] if command == "render" else []),
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        sys.exit(f"{command} failed in {repo}:\n{proc.stderr[-2000:]}")
    names = [line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    return [n for n in names if n and not n.startswith("import time")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=REPO)
    parser.add_argument("--config", default="configs/digits.yaml")
    args = parser.parse_args()
    for command in ("render", "validate"):
        names = loaded(args.repo, command, args.config)
        own = sorted(n for n in names if n == "hpc_tf" or n.startswith("hpc_tf."))
        feature = [n for n in own if any(w in n for w in FEATURE_WORDS)]
        print(
            f"{command} {args.config} ({args.repo}): {len(own)} hpc_tf modules, {len(names)} in all; "
            f"{len(feature)} for sweeps/roles/requeue: {' '.join(feature) or '-'}"
        )
        print("  " + " ".join(own))


if __name__ == "__main__":
    main()
