"""Launch overhead per backend: from starting the submission to the entry script's first line.

What a user waits for before their code runs is everything between typing the command and the
script's first line: the submit process, slurmctld scheduling, the batch script, srun, and for
hpc_tf its in-job runtime. The entry script (bench/_first_line.py) prints `FIRST_LINE <time.time()>`
before it imports anything; the overhead is that timestamp minus time.time() taken right before
the submitting process starts. All nodes are this machine, so both clocks are the same clock.
Slurm's own StartTime has only second resolution and hpc_tf's batch script cannot be changed, so
this common reference is what makes hpc_tf and hand-written jobs comparable.

Variants, run interleaved (one of each per round, the first rotating; medians reported):
  hpc_tf slurm       hpc_tf submit --backend slurm --wait, single process
  sbatch srun        hand-written: #SBATCH lines + `exec srun --ntasks=1 python -u first_line.py`
  hpc_tf mpi srun    hpc_tf, distributed_backend mpi, 2 nodes x 1, launcher srun (rank 0's line)
  sbatch srun pmix   hand-written: 2 nodes, `exec srun --mpi=pmix --ntasks=2 python -u …`
  hpc_tf ps script   hpc_tf, distributed_backend ps, 4 nodes, 2 workers + 1 ps, ps_mode script
  hpc_tf local       hpc_tf submit --backend local --wait, single process

Every job is named bench-launch-<pid>; after each run the script waits until none of them holds
a node (not timed), and at the end `scancel --name` removes whatever is left, also on failure.

Usage (from anywhere; the dev cluster must be up, see scripts/dev-cluster.sh):
    python bench/bench_launch.py [--runs 8] [--warmup 1]
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from _jobs import (BENCH, PY, Finished, cancel_all, check_cluster, cluster_env, interleave,
                   job_name, run_hpc_tf, run_sbatch, settle, summarize, tail, write_config,
                   write_results)

RESULTS = BENCH / "results" / "launch.json"
ENTRY = "first_line.py"
TIMEOUT_S = 180.0
PAIRS = [("hpc_tf slurm", "sbatch srun"), ("hpc_tf mpi srun", "sbatch srun pmix")]


def hpc_tf_configs(name: str, project: Path) -> dict[str, dict[str, object]]:
    """The three hpc_tf job shapes; max_run_duration only guards against a hung run."""
    base = {"experiment": name, "source_directory": str(project), "entry_script": ENTRY,
            "max_run_duration_seconds": 300}
    return {
        "single": base,
        "mpi": {**base, "distributed_backend": "mpi", "node_count": 2,
                "process_count_per_node": 1, "launcher": "srun"},
        "ps": {**base, "distributed_backend": "ps", "node_count": 4, "worker_count": 2,
               "parameter_server_count": 1, "ps_mode": "script"},
    }


def sbatch_scripts(name: str, entry: Path) -> dict[str, str]:
    """What a user would write by hand for the same two shapes, with the same time limit.

    TF_USE_LEGACY_KERAS=1 where hpc_tf sets it too (distributed jobs), so the jobs match.
    """
    cmd = f"{shlex.quote(PY)} -u {shlex.quote(str(entry))}"
    head = (f"#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --output=slurm-%j.out\n"
            "#SBATCH --time=5\n")
    return {
        "single": head + "#SBATCH --nodes=1\n#SBATCH --ntasks=1\n"
                  f"exec srun --ntasks=1 {cmd}\n",
        "pmix": head + "#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=1\n"
                "export TF_USE_LEGACY_KERAS=1\n"
                f"exec srun --mpi=pmix --ntasks=2 {cmd}\n",
    }


def first_line_ms(done: Finished) -> float:
    """Rank 0's FIRST_LINE timestamp minus the submission's start, in ms."""
    for line in done.output.read_text(errors="replace").splitlines():
        words = line.split()
        if words[:1] == ["FIRST_LINE"] and words[2:3] in (["0"], []):
            return (float(words[1]) - done.submitted_at) * 1000
    raise RuntimeError(f"no FIRST_LINE from rank 0 in {done.output}:\n{tail(done.output)}")


def make_runners(tmp: Path, name: str, env: dict[str, str]) -> dict[str, Callable[[], Finished]]:
    """One callable per variant, each running one job to its end; files go under tmp."""
    project = tmp / "project"
    project.mkdir()
    shutil.copy(BENCH / "_first_line.py", project / ENTRY)
    configs = {k: write_config(tmp / f"{k}.json", c) for k, c in hpc_tf_configs(name, project).items()}
    hand = tmp / "hand"
    hand.mkdir()
    scripts = {}
    for key, text in sbatch_scripts(name, project / ENTRY).items():
        scripts[key] = hand / f"{key}.sh"
        scripts[key].write_text(text)
    runs = tmp / "runs"

    def hpc(key: str, backend: str) -> Callable[[], Finished]:
        return lambda: run_hpc_tf(configs[key], backend, runs, env, TIMEOUT_S)

    def sbatch(key: str) -> Callable[[], Finished]:
        return lambda: run_sbatch(scripts[key], hand, "FIRST_LINE", env, TIMEOUT_S)

    return {"hpc_tf slurm": hpc("single", "slurm"), "sbatch srun": sbatch("single"),
            "hpc_tf mpi srun": hpc("mpi", "slurm"), "sbatch srun pmix": sbatch("pmix"),
            "hpc_tf ps script": hpc("ps", "slurm"), "hpc_tf local": hpc("single", "local")}


def ratios(stats: dict[str, dict[str, float]]) -> dict[str, float]:
    """hpc_tf over hand-written, median over median, and the difference in ms, per pair."""
    out = {}
    for ours, theirs in PAIRS:
        a, b = stats[ours]["median_ms"], stats[theirs]["median_ms"]
        out[f"{ours} / {theirs}"] = a / b
        out[f"{ours} - {theirs} (ms)"] = a - b
    return out


def print_table(stats: dict[str, dict[str, float]], rat: dict[str, float], runs: int) -> None:
    """A fixed-width table, then the ratios."""
    print(f"\n{'variant':<18} {'median':>8} {'min':>8} {'max':>8}   "
          f"(ms from submit to rank 0's first line, {runs} interleaved runs)")
    for name, s in stats.items():
        print(f"{name:<18} {s['median_ms']:>8.0f} {s['min_ms']:>8.0f} {s['max_ms']:>8.0f}")
    print()
    for ours, theirs in PAIRS:
        print(f"{ours} / {theirs}: {rat[f'{ours} / {theirs}']:.2f} (median ratio), "
              f"{rat[f'{ours} - {theirs} (ms)']:+.0f} ms")


def parse_args() -> argparse.Namespace:
    """--runs N (default 8), --warmup N (default 1)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=8, help="timed runs per variant (default 8)")
    p.add_argument("--warmup", type=int, default=1,
                   help="untimed rounds first: page cache, .pyc files, slurmd state (default 1)")
    args = p.parse_args()
    if args.runs < 1 or args.warmup < 0:
        p.error("--runs must be at least 1 and --warmup at least 0")
    return args


def main() -> None:
    """Bench, scancel whatever is left of our jobs whatever happens, report."""
    args = parse_args()
    env = cluster_env()
    check_cluster(env, "bench_launch")
    name = job_name("bench-launch")
    with tempfile.TemporaryDirectory(prefix="hpc_tf-bench-launch-") as tmp:
        runners = make_runners(Path(tmp), name, env)

        def run(variant: str) -> float:
            try:
                return first_line_ms(runners[variant]())
            finally:
                settle(name, env)

        try:
            samples, repeated = interleave(list(runners), args.runs, args.warmup, run)
        finally:
            cancel_all(name, env)
        jobs = {"hpc_tf_configs": hpc_tf_configs(name, Path("<tmp>/project")),
                "sbatch_scripts": sbatch_scripts(name, Path("<tmp>/project") / ENTRY)}
    stats = summarize(samples, "ms")
    rat = ratios(stats)
    print_table(stats, rat, args.runs)
    write_results(RESULTS, {"runs": args.runs, "warmup": args.warmup, "stats": stats,
                            "ratios": rat, "samples_ms": samples,
                            "repeated_after_foreign_cancel": repeated, "jobs": jobs})


if __name__ == "__main__":
    main()
