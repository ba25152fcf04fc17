"""Following runs (issue: runs you can follow): scheduler queries per poll, and `runs` over many run directories.

1. Queries per poll interval while watching 1, 50 and 500 runs (goal: 1, 1, 1). The jobs are real
   (`sbatch --hold`, so they stay queued and cost the cluster nothing), each with a run directory;
   sacct and squeue are counted by PATH wrappers that log each real call and then run the real tool.
2. `python -m hpc_tf runs --limit 0 --json` over 1,000 run directories whose state is final (no
   scheduler query at all), and over 1,000 of which 100 are unfinished (one query): median wall time.

    python bench/bench_runs.py [--polls 5] [--runs 5]

Results go to bench/results/runs.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_cli import cluster_env

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def counting_path(tmp: Path, env: dict[str, str]) -> tuple[str, Path]:
    """A PATH whose sacct/squeue log every call, then exec the real tool."""
    bin_dir, log = tmp / "bin", tmp / "calls.log"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("sacct", "squeue"):
        real = subprocess.run(["which", tool], capture_output=True, text=True, env=env, check=True).stdout.strip()
        (bin_dir / tool).write_text(f'#!/bin/sh\necho {tool} >> "{log}"\nexec "{real}" "$@"\n')
        (bin_dir / tool).chmod(0o755)
    return f"{bin_dir}{os.pathsep}{env['PATH']}", log


def held_jobs(count: int, env: dict[str, str]) -> list[str]:
    argv = ["sbatch", "--parsable", "--hold", "-o", "/dev/null", "-J", "bench-runs", "--wrap", "true"]
    return [
        subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout.strip().split(";")[0]
        for _ in range(count)
    ]


def make_run_dirs(root: Path, job_ids: list[str], final: int) -> None:
    """Run directories as hpc_tf writes them (status.json: hpc_tf.core.records.RunStatus, read leniently: missing
    fields take their defaults); the first `final` are finished, the rest queued."""
    for i, job_id in enumerate(job_ids):
        run = root / "bench" / f"20261128-{i:06d}-{i:06x}"
        run.mkdir(parents=True)
        (run / "logs").mkdir()
        done = i < final
        (run / "status.json").write_text(
            json.dumps(
                {
                    "run_id": run.name,
                    "experiment": "bench",
                    "backend": "slurm",
                    "job_id": job_id,
                    "state": "COMPLETED" if done else "PENDING",
                    "exit_code": 0 if done else None,
                    "final": done,
                    "submit_time": "2026-11-28T03:00:00+00:00",
                }
            )
        )


def queries_per_poll(watched: int, polls: int, env: dict[str, str], tmp: Path) -> float:
    from hpc_tf.runs.follow import Run, Watcher  # hpc_tf.runs before the restructuring

    jobs = held_jobs(watched, env)
    try:
        root = tmp / f"watch-{watched}"
        make_run_dirs(root, jobs, 0)
        runs = [Run(p) for p in sorted((root / "bench").iterdir())]
        path, log = counting_path(tmp, env)
        os.environ.update({**env, "PATH": path})
        log.unlink(missing_ok=True)
        watcher = Watcher()  # settings from os.environ, read now (after the PATH change)
        watcher.refresh(runs)  # the first poll may also probe whether accounting is on: not counted
        log.unlink(missing_ok=True)
        for _ in range(polls):
            watcher.refresh(runs)
        return len(log.read_text().splitlines()) / polls
    finally:
        subprocess.run(["scancel", *jobs], env=env, check=False)


def runs_listing_ms(tmp: Path, unfinished: int, repeats: int, env: dict[str, str]) -> float:
    root = tmp / f"list-{unfinished}"
    jobs = held_jobs(unfinished, env) if unfinished else []
    try:
        make_run_dirs(root, ["0"] * (1000 - unfinished) + jobs, 1000 - unfinished)
        argv = [sys.executable, "-m", "hpc_tf", "runs", "--runs-dir", str(root), "--limit", "0", "--json"]
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            out = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout
            samples.append((time.perf_counter() - start) * 1000)
            assert len(json.loads(out)) == 1000
        return statistics.median(samples)
    finally:
        if jobs:
            subprocess.run(["scancel", *jobs], env=env, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=5)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = {k: v for k, v in cluster_env().items() if k != "PYTHONDONTWRITEBYTECODE"}
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="hpc_tf-bench-runs-") as tmp:
        per_poll = {n: queries_per_poll(n, args.polls, env, Path(tmp)) for n in (1, 50, 500)}
        listing = {
            "final": runs_listing_ms(Path(tmp), 0, args.runs, env),
            "100 unfinished": runs_listing_ms(Path(tmp), 100, args.runs, env),
        }
    for n, q in per_poll.items():
        print(f"watching {n:4} runs: {q:.2f} scheduler queries per poll   (goal 1)")
    for name, ms in listing.items():
        print(f"`runs` over 1,000 run directories ({name}): {ms:.0f} ms (median of {args.runs})")
    results = {"queries_per_poll": per_poll, "runs_listing_ms": listing}
    out = REPO / "bench" / "results" / "runs.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
