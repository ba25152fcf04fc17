"""Horovod training throughput under hpc_tf's launchers against mpirun by hand, same allocation.

A launcher can cost a distributed job more than start-up time: rank placement, binding, the MPI
transport it selects and the environment it passes all show up in every step. So the measure here
is the training throughput itself, computed inside the job by bench/_horovod_synthetic.py (a small
conv net on random data, Horovod's DistributedGradientTape; timed between two barriers after the
warm-up steps, so start-up and TensorFlow's import don't count) and printed by rank 0 as
`THROUGHPUT <samples/s>`, summed over ranks.

Variants, run interleaved (one of each per round, the first rotating; medians reported), all in
an allocation of 2 nodes x 1 task:
  hpc_tf mpirun   hpc_tf, distributed_backend mpi, launcher mpirun
  by hand mpirun  sbatch -N2 --ntasks-per-node=1, `exec mpirun -np 2 --bind-to none --map-by slot
                  python -u horovod_synthetic.py …`
  hpc_tf srun     hpc_tf, distributed_backend mpi, launcher srun (srun --mpi=pmix)
Every job gets TF_USE_LEGACY_KERAS=1 (hpc_tf sets it for distributed jobs; the hand-written
script exports it) and the same script arguments.

Every job is named bench-horovod-<pid>; after each run the script waits until none of them holds
a node (not timed), and at the end `scancel --name` removes whatever is left, also on failure.

Usage (from anywhere; the dev cluster must be up, see scripts/dev-cluster.sh):
    python bench/bench_horovod.py [--runs 5] [--warmup 1] [--steps 200] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _jobs import (
    BENCH,
    PY,
    Finished,
    cancel_all,
    check_cluster,
    cluster_env,
    interleave,
    job_name,
    run_hpc_tf,
    run_sbatch,
    settle,
    summarize,
    tail,
    write_config,
    write_results,
)

RESULTS = BENCH / "results" / "horovod.json"
ENTRY = "horovod_synthetic.py"
RANKS = 2
TIMEOUT_S = 300.0
BY_HAND = "by hand mpirun"
GOAL = 0.98


def script_params(args: argparse.Namespace) -> dict[str, object]:
    """The entry script's arguments, in hpc_tf's script_params form; the same for every variant."""
    return {
        "--batch-size": args.batch_size,
        "--warmup-steps": args.warmup_steps,
        "--steps": args.steps,
        "--threads": args.threads,
    }


def hpc_tf_config(name: str, project: Path, launcher: str, params: dict[str, object]) -> dict[str, object]:
    """The Horovod job as hpc_tf takes it: 2 nodes x 1 process, the given launcher."""
    return {
        "experiment": name,
        "source_directory": str(project),
        "entry_script": ENTRY,
        "script_params": params,
        "distributed_backend": "mpi",
        "node_count": RANKS,
        "process_count_per_node": 1,
        "launcher": launcher,
        "max_run_duration_seconds": 600,
    }


def sbatch_script(name: str, entry: Path, params: dict[str, object]) -> str:
    """What a user would write by hand: the same allocation, Open MPI's mpirun inside it."""
    argv = [PY, "-u", str(entry)] + [str(w) for k, v in params.items() for w in (k, v)]
    return (
        f"#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --output=slurm-%j.out\n"
        f"#SBATCH --nodes={RANKS}\n#SBATCH --ntasks-per-node=1\n#SBATCH --time=10\n"
        "export TF_USE_LEGACY_KERAS=1\n"
        f"exec mpirun -np {RANKS} --bind-to none --map-by slot {shlex.join(argv)}\n"
    )


def throughput(done: Finished) -> float:
    """Rank 0's THROUGHPUT; refuses a run whose Horovod world was not 2 ranks (a broken launch
    can start 2 independent size-1 worlds, which would look fast and mean nothing)."""
    values = dict(
        line.split(None, 1)
        for line in done.output.read_text(errors="replace").splitlines()
        if line.startswith(("THROUGHPUT ", "HVD_SIZE "))
    )
    if "THROUGHPUT" not in values or values.get("HVD_SIZE", "").strip() != str(RANKS):
        raise RuntimeError(
            f"no THROUGHPUT with HVD_SIZE {RANKS} in {done.output} (job {done.job_id}):\n{tail(done.output)}"
        )
    return float(values["THROUGHPUT"])


def make_runners(
    tmp: Path, name: str, params: dict[str, object], env: dict[str, str]
) -> dict[str, Callable[[], Finished]]:
    """One callable per variant, each running one job to its end; files go under tmp."""
    project = tmp / "project"
    project.mkdir()
    shutil.copy(BENCH / "_horovod_synthetic.py", project / ENTRY)
    configs = {
        launcher: write_config(tmp / f"{launcher}.json", hpc_tf_config(name, project, launcher, params))
        for launcher in ("mpirun", "srun")
    }
    hand = tmp / "hand"
    hand.mkdir()
    script = hand / "mpirun.sh"
    script.write_text(sbatch_script(name, project / ENTRY, params))
    runs = tmp / "runs"
    return {
        "hpc_tf mpirun": lambda: run_hpc_tf(configs["mpirun"], "slurm", runs, env, TIMEOUT_S),
        BY_HAND: lambda: run_sbatch(script, hand, "THROUGHPUT", env, TIMEOUT_S),
        "hpc_tf srun": lambda: run_hpc_tf(configs["srun"], "slurm", runs, env, TIMEOUT_S),
    }


def ratios(stats: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each hpc_tf variant's median throughput over the hand-written one's."""
    base = stats[BY_HAND]["median_samples_per_s"]
    return {f"{name} / {BY_HAND}": s["median_samples_per_s"] / base for name, s in stats.items() if name != BY_HAND}


def print_table(
    stats: dict[str, dict[str, float]], rat: dict[str, float], walls: dict[str, list[float]], runs: int
) -> None:
    """A fixed-width table (throughput, and each job's wall time as a sanity check), then ratios."""
    print(
        f"\n{'variant':<16} {'median':>9} {'min':>9} {'max':>9}  {'wall max':>8}   "
        f"(samples/s over {RANKS} ranks; wall s; {runs} interleaved runs)"
    )
    for name, s in stats.items():
        print(
            f"{name:<16} {s['median_samples_per_s']:>9.1f} {s['min_samples_per_s']:>9.1f} "
            f"{s['max_samples_per_s']:>9.1f}  {max(walls[name]):>8.1f}"
        )
    print()
    for key, value in rat.items():
        print(f"{key}: {value:.3f} (median ratio)   goal >= {GOAL}")


def parse_args() -> argparse.Namespace:
    """--runs N (default 5), --warmup N (default 1), and the entry script's knobs."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="timed runs per variant (default 5)")
    p.add_argument(
        "--warmup", type=int, default=1, help="untimed rounds first: page cache for TensorFlow's import (default 1)"
    )
    p.add_argument(
        "--steps",
        type=int,
        default=200,
        help="timed steps per run (default 200: ~3 s of stepping on an idle 2-core "
        "machine, ~8 s under load; with 50 the window is under a second and one "
        "scheduler hiccup moves the result by percents, too coarse for a 0.98 goal)",
    )
    p.add_argument("--warmup-steps", type=int, default=10, help="untimed steps per run (default 10)")
    p.add_argument("--batch-size", type=int, default=64, help="samples per rank per step (default 64)")
    p.add_argument("--threads", type=int, default=1, help="TensorFlow threads per rank (default 1: 2 ranks on 2 cores)")
    args = p.parse_args()
    if args.runs < 1 or args.warmup < 0 or args.steps < 1:
        p.error("--runs and --steps must be at least 1, --warmup at least 0")
    return args


def main() -> None:
    """Bench, scancel whatever is left of our jobs whatever happens, report."""
    args = parse_args()
    env = cluster_env()
    check_cluster(env, "bench_horovod")
    name = job_name("bench-horovod")
    params = script_params(args)
    walls: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="hpc_tf-bench-horovod-") as tmp:
        runners = make_runners(Path(tmp), name, params, env)

        def run(variant: str) -> float:
            try:
                done = runners[variant]()
                walls.setdefault(variant, []).append(time.time() - done.submitted_at)
                return throughput(done)
            finally:
                settle(name, env)

        try:
            samples, repeated = interleave(list(runners), args.runs, args.warmup, run)
        finally:
            cancel_all(name, env)
    stats = summarize(samples, "samples_per_s")
    rat = ratios(stats)
    print_table(stats, rat, walls, args.runs)
    jobs = {
        "script_params": params,
        "hpc_tf_configs": {
            launcher: hpc_tf_config(name, Path("<tmp>/project"), launcher, params) for launcher in ("mpirun", "srun")
        },
        "sbatch_script": sbatch_script(name, Path("<tmp>/project") / ENTRY, params),
    }
    write_results(
        RESULTS,
        {
            "runs": args.runs,
            "warmup": args.warmup,
            "ranks": RANKS,
            "goal_ratio_at_least": GOAL,
            "stats": stats,
            "ratios": rat,
            "samples_per_s": samples,
            "wall_s": walls,
            "repeated_after_foreign_cancel": repeated,
            "jobs": jobs,
        },
    )


if __name__ == "__main__":
    main()
