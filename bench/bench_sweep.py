"""Sweeps: submitting a 1,000-trial sweep, and what a trial adds to a task's start.

1. Submit (whole processes, interleaved rounds, medians): `python -m hpc_tf submit` of a 1,000-trial random
   sweep (one job array, held with `--hold` so nothing runs) against submitit's own `map_array` of 1,000
   trivial calls (bench/_submitit_map_array.py, held too). Goals: hpc_tf ≤ 1 s, hpc_tf / submitit ≤ 0.5.
2. Start (no Slurm in the way): `python -m hpc_tf.job SWEEP --trial-offset 0` as array task i (the trial's
   directory made, its flags read) against `python -m hpc_tf.job RUN` on a copy of a queued run, both to
   the entry script's first line (bench/_first_line.py). Slurm's own part is the same for both (an array
   task is a job). Goal: the same.

Usage:  python bench/bench_sweep.py [--runs 9]
It brings up a dev cluster of its own (scripts/dev-cluster.sh with HPC_TF_CLUSTER_DIR=/var/tmp/hpctf-bench-sweep,
port 19917, MaxJobCount 100000) and takes it down at the end: every task of a held-then-cancelled array stays
a job record for MinJobAge (an hour), and 2 x 10 arrays of 1,000 would fill the default cluster's MaxJobCount
(10000) for everyone else ("Slurm temporarily unable to accept job").
Results: bench/results/sweep.json (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _jobs import own_cluster_env

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
PY = sys.executable
TRIALS = 1000


CLUSTER = REPO / "scripts" / "dev-cluster.sh"
KNOBS = {
    "HPC_TF_CLUSTER_DIR": "/var/tmp/hpctf-bench-sweep",
    "HPC_TF_CLUSTER_PORT": "19917",
    "HPC_TF_CLUSTER_MAX_JOB_COUNT": "100000",
}


def cluster_env() -> dict[str, str]:
    """Bring up the benchmark's own cluster; its environment (SLURM_CONF, ...) for every case."""
    return own_cluster_env(KNOBS)


def configs(tmp: Path) -> tuple[Path, Path]:
    project = tmp / "proj"
    project.mkdir()
    shutil.copy(BENCH / "_first_line.py", project / "first_line.py")
    common = {"experiment": "bench", "source_directory": str(project), "entry_script": "first_line.py"}
    held = {"compute_target": {"additional_parameters": {"hold": True}}}
    sweep = {
        **common,
        **held,
        "hyperdrive": {
            "hyperparameter_sampling": {
                "type": "random",
                "seed": 1,
                "parameter_space": {"--lr": "loguniform(-6, -1)", "--batch-size": "choice(16, 32, 64)"},
            },
            "primary_metric_name": "val",
            "primary_metric_goal": "maximize",
            "max_total_runs": TRIALS,
            "max_concurrent_runs": 50,
        },
    }
    (tmp / "sweep.yaml").write_text(json.dumps(sweep))
    (tmp / "run.yaml").write_text(json.dumps({**common, **held}))
    return tmp / "sweep.yaml", tmp / "run.yaml"


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO)
    ms = (time.perf_counter() - t0) * 1000
    if proc.returncode != 0:
        sys.exit(f"{argv} failed:\n{proc.stderr}")
    return ms, proc.stdout


def bench_submit(tmp: Path, env: dict[str, str], runs: int, jobs: list[str]) -> dict[str, list[float]]:
    sweep_yaml, _ = configs(tmp)
    runs_dir = tmp / "runs"
    cases = {
        "hpc_tf submit (1,000-trial sweep)": lambda: [
            PY,
            "-m",
            "hpc_tf",
            "submit",
            str(sweep_yaml),
            "--json",
            "--runs-dir",
            str(runs_dir),
        ],
        "submitit map_array (1,000 calls)": lambda: [
            PY,
            str(BENCH / "_submitit_map_array.py"),
            str(tmp / "submitit"),
            str(TRIALS),
        ],
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for round_ in range(runs + 1):  # round 0: warm-up, not counted
        order = names[round_ % 2 :] + names[: round_ % 2]
        for name in order:
            ms, out = timed(cases[name](), env)
            jobs.append(json.loads(out)["array_job_ids"][0] if out.startswith("{") else out.strip())
            if round_:
                samples[name].append(ms)
    return samples


def first_line_ms(argv: list[str], env: dict[str, str], out: Path) -> float:
    t0 = time.time()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"{argv} failed:\n{proc.stderr}")
    line = next(line for line in out.read_text().splitlines() if line.startswith("FIRST_LINE"))
    return (float(line.split()[1]) - t0) * 1000


def bench_start(tmp: Path, env: dict[str, str], runs: int, jobs: list[str]) -> dict[str, list[float]]:
    (tmp / "start").mkdir()
    sweep_yaml, run_yaml = configs(tmp / "start")
    runs_dir = tmp / "start-runs"
    run_info = json.loads(
        timed([PY, "-m", "hpc_tf", "submit", str(run_yaml), "--json", "--runs-dir", str(runs_dir)], env)[1]
    )
    sweep_info = json.loads(
        timed([PY, "-m", "hpc_tf", "submit", str(sweep_yaml), "--json", "--runs-dir", str(runs_dir)], env)[1]
    )
    jobs += [str(run_info["job_id"]), sweep_info["array_job_ids"][0]]
    local = {k: v for k, v in env.items() if not k.startswith("SLURM_")}
    samples: dict[str, list[float]] = {
        "run: python -m hpc_tf.job RUN": [],
        "trial: python -m hpc_tf.job SWEEP --trial-offset 0": [],
    }
    for i in range(runs + 1):
        copy = Path(run_info["run_dir"]).with_name(f"copy-{i}")
        shutil.copytree(run_info["run_dir"], copy, symlinks=True)
        run_ms = first_line_ms([PY, "-m", "hpc_tf.job", str(copy)], local, copy / "logs" / "rank-0.out")
        trial_env = {**local, "SLURM_ARRAY_TASK_ID": str(i), "SLURM_ARRAY_JOB_ID": "1"}
        trial_out = Path(sweep_info["sweep_dir"]).with_name(f"{sweep_info['sweep_id']}_{i}") / "logs" / "rank-0.out"
        trial_ms = first_line_ms(
            [PY, "-m", "hpc_tf.job", sweep_info["sweep_dir"], "--trial-offset", "0"], trial_env, trial_out
        )
        if i:
            samples["run: python -m hpc_tf.job RUN"].append(run_ms)
            samples["trial: python -m hpc_tf.job SWEEP --trial-offset 0"].append(trial_ms)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    env = cluster_env()
    jobs: list[str] = []
    with tempfile.TemporaryDirectory(prefix="hpctf-bench-sweep-") as tmp:
        try:
            submit = bench_submit(Path(tmp), env, args.runs, jobs)
            start = bench_start(Path(tmp), env, args.runs, jobs)
        finally:
            subprocess.run(["scancel", *jobs], capture_output=True, env=env)
            subprocess.run([str(CLUSTER), "down"], capture_output=True, env=env)
    med = {name: statistics.median(v) for name, v in {**submit, **start}.items()}
    for name, value in med.items():
        print(f"{name:55} median {value:8.1f} ms  (min {min({**submit, **start}[name]):.1f})")
    names = list(submit)
    ratio = med[names[0]] / med[names[1]]
    print(
        f"submit: hpc_tf {med[names[0]] / 1000:.2f} s (goal <= 1 s), hpc_tf / submitit map_array = {ratio:.2f} (goal <= 0.5)"
    )
    run_name, trial_name = list(start)
    print(f"start: trial - run = {med[trial_name] - med[run_name]:+.1f} ms (goal: the same)")
    out = BENCH / "results" / "sweep.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {"runs": args.runs, "samples": {**submit, **start}, "medians_ms": med, "submit_ratio": ratio}, indent=1
        )
    )


if __name__ == "__main__":
    main()
