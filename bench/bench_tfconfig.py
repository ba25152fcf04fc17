"""What one task of a 40,000-task job spends on its place in the job: layout and TF_CONFIG (issue 18, item 8).

Every task of a 'multiworker' or 'ps' job derives the whole layout from what Slurm tells it and then its own
TF_CONFIG, at its start (hpc_tf/job/runtime.py). This times exactly that, in-process, per case (medians of
interleaved rounds, one untimed warm-up round):

  context   TaskContext.from_env: the step's hostlist and tasks per node expanded (SLURM_STEP_NODELIST, ...)
  layout    core.tfcluster.task_slots: every task's slot (node, role, index, port)
  config    tf_config(slots, rank) and json.dumps: this task's TF_CONFIG text
  route     the size check (core.envsize) and, past 128 KiB, the file write the runtime does (not durable)
  total     all four, as one task does them (the goal: <= 100 ms for 40,000 tasks)

Usage:  python bench/bench_tfconfig.py [--runs 15] [--repo DIR]
`--repo` times another checkout's hpc_tf (a code without core.envsize has no `route`). Results:
bench/results/tfconfig.json (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
CASES = {  # name → (backend, nodes, tasks per node, parameter servers)
    "multiworker 40,000 (10,000 nodes × 4)": ("multiworker", 10_000, 4, 0),
    "ps 40,000 (1 chief, 64 ps, 39,935 workers)": ("ps", 10_000, 4, 64),
    "multiworker 8,192 (2,048 nodes × 4)": ("multiworker", 2_048, 4, 0),
}


def srun_env(nodes: int, per_node: int, rank: int) -> dict[str, str]:
    """What srun gives task `rank` of the step (Cray-style names, as on Frontier)."""
    return {
        "SLURM_JOB_ID": "4242",
        "SLURM_PROCID": str(rank),
        "SLURM_LOCALID": str(rank % per_node),
        "SLURM_STEP_NUM_TASKS": str(nodes * per_node),
        "SLURM_STEP_NODELIST": f"nid[{1:06d}-{nodes:06d}]",
        "SLURM_STEP_TASKS_PER_NODE": f"{per_node}(x{nodes})",
        "SLURM_JOB_NODELIST": f"nid[{1:06d}-{nodes:06d}]",
    }


def one_task(case: tuple[str, int, int, int], rank: int, out: Path) -> dict[str, float]:
    """The four phases of one task, in ms."""
    from hpc_tf.core.tfcluster import task_slots, tf_config
    from hpc_tf.job.context import TaskContext

    backend, nodes, per_node, ps = case
    marks = [time.perf_counter()]
    ctx = TaskContext.from_env(srun_env(nodes, per_node, rank), f"nid{rank // per_node + 1:06d}")
    marks.append(time.perf_counter())
    slots = task_slots(backend, ctx.nodes, ctx.tasks_per_node, ps, ctx.job_id, ctx.resv_ports)
    marks.append(time.perf_counter())
    text = json.dumps(tf_config(slots, ctx.rank))
    marks.append(time.perf_counter())
    route(text, out / f"tf-config-{rank}.json")
    marks.append(time.perf_counter())
    phases = dict(zip(("context", "slots", "config", "route"), (b - a for a, b in pairwise(marks)), strict=True))
    return {name: ms * 1000 for name, ms in {**phases, "total": marks[-1] - marks[0]}.items()}


def route(text: str, path: Path) -> None:
    """The runtime's choice: the environment, or (past the limit) the file."""
    try:
        from hpc_tf.core.envsize import MAX_ARG_STRLEN, tf_config_in_env
    except ImportError:  # a checkout before issue 18: TF_CONFIG always went into the environment
        return
    from hpc_tf.rundir import write_atomic

    if not tf_config_in_env(text, MAX_ARG_STRLEN):
        write_atomic(path, text, durable=False)


def summary(samples: list[float]) -> dict[str, float]:
    deciles = statistics.quantiles(samples, n=10, method="inclusive")
    return {"median": statistics.median(samples), "min": min(samples), "p90": deciles[-1]}


def run(rounds: int, out: Path, progress: Callable[[str], None]) -> dict[str, Any]:
    names = list(CASES)
    samples: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for r in range(rounds + 1):  # round 0: warm-up, not kept
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            _, nodes, per_node, _ = CASES[name]
            rank = (r * 7919) % (nodes * per_node)  # a different task each round
            result = one_task(CASES[name], rank, out)
            if r:
                samples[name].append(result)
        progress(f"round {r}/{rounds}")
    return {name: {phase: summary([s[phase] for s in got]) for phase in got[0]} for name, got in samples.items() if got}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose hpc_tf is timed")
    args = parser.parse_args()
    sys.path.insert(0, str(args.repo.resolve()))
    import hpc_tf

    with tempfile.TemporaryDirectory() as tmp:
        results = run(args.runs, Path(tmp), lambda line: print(line, end="\r", file=sys.stderr, flush=True))
    print(f"\nhpc_tf from {Path(hpc_tf.__file__).parent}, {args.runs} rounds; ms: median (min, p90)")
    for name, phases in results.items():
        cells = "  ".join(f"{p} {v['median']:.1f} ({v['min']:.1f}, {v['p90']:.1f})" for p, v in phases.items())
        print(f"{name:44s} {cells}")
    (REPO / "bench" / "results").mkdir(exist_ok=True)
    record = {"repo": str(args.repo), "runs": args.runs, "cases": {k: list(v) for k, v in CASES.items()}}
    (REPO / "bench" / "results" / "tfconfig.json").write_text(json.dumps({**record, "results": results}, indent=1))


if __name__ == "__main__":
    main()
