"""What the proposed speed-ups would buy, measured before anyone writes them: the same commands with each proposal
emulated by bench/_whatif.py (monkeypatching in the measured process; hpc_tf itself is not changed), interleaved
against the unpatched wrapper and the real command.

1. CLI, whole processes (held jobs, cancelled at the end): `submit` and `render` with each patch alone and all
   together, next to `python -c pass` and submitit's trivial submission (the goals: render <= 120 ms,
   submit / submitit trivial <= 1.2).
2. The in-job runtime offline: `python -m hpc_tf.job .` in copies of a real queued run directory, start -> the
   entry script's first line, with each in-job patch, next to `python first_line.py`.

    python bench/bench_whatif.py [--runs 15] [--job-runs 15]

Results: bench/results/whatif.json. The patches are described in bench/_whatif.py; bench_launch.py --whatif runs
them end to end on the cluster.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _jobs import BENCH, PY, REPO, Finished, write_config, write_results
from bench_cli import cluster_env, json_job_id, last_line
from bench_launch import clean_job_env, first_line_at, queued_run_dir

RESULTS = BENCH / "results" / "whatif.json"
WRAPPER = str(BENCH / "_whatif.py")
SUBMIT_PATCHES = ["gc", "nosubmitit", "fcntl", "noprobe", "deferfsync", "secrets", "pyrender"]
RENDER_PATCHES = ["gc", "secrets", "pyrender"]
JOB_PATCHES = ["gc", "fcntl", "deferfsync", "secrets", "spawnfirst", "fastpath"]
JOB_ALL = "gc,fcntl,deferfsync,secrets,spawnfirst"


def cli_cases(tmp: Path) -> dict[str, tuple[list[str], bool]]:
    """name -> (argv, submits a job)."""
    submit = ["submit", "configs/digits.yaml", "--backend", "slurm", "--runs-dir", str(tmp / "runs"), "--json"]
    submit += ["--set", "compute_target.additional_parameters.hold=true"]
    render = ["render", "configs/digits.yaml", "--backend", "slurm"]
    cases: dict[str, tuple[list[str], bool]] = {
        "python -c pass": ([PY, "-c", "pass"], False),
        "submitit trivial": ([PY, str(BENCH / "_submitit_trivial.py"), str(tmp / "submitit")], True),
        "submit": ([PY, "-m", "hpc_tf", *submit], True),
        "submit wrapper none": ([PY, WRAPPER, "none", "hpc_tf", *submit], True),
    }
    for patch in SUBMIT_PATCHES:
        cases[f"submit +{patch}"] = ([PY, WRAPPER, patch, "hpc_tf", *submit], True)
    cases["submit +all"] = ([PY, WRAPPER, ",".join(SUBMIT_PATCHES), "hpc_tf", *submit], True)
    cases["submit +gc,nosubmitit"] = ([PY, WRAPPER, "gc,nosubmitit", "hpc_tf", *submit], True)
    cases["render"] = ([PY, "-m", "hpc_tf", *render], False)
    cases["render wrapper none"] = ([PY, WRAPPER, "none", "hpc_tf", *render], False)
    for patch in RENDER_PATCHES:
        cases[f"render +{patch}"] = ([PY, WRAPPER, patch, "hpc_tf", *render], False)
    cases["render +all"] = ([PY, WRAPPER, ",".join(RENDER_PATCHES), "hpc_tf", *render], False)
    return cases


def bench_cli_cases(runs: int, env: dict[str, str], tmp: Path) -> dict[str, list[float]]:
    cases = cli_cases(tmp)
    check = subprocess.run(cases["render +pyrender"][0], cwd=REPO, env=env, capture_output=True, text=True)
    real = subprocess.run(cases["render"][0], cwd=REPO, env=env, capture_output=True, text=True)
    if check.stdout != real.stdout:
        raise SystemExit("bench_whatif: _whatif.py's hand-written renderer no longer matches the shipped template")
    names = list(cases)
    samples: dict[str, list[float]] = {n: [] for n in names}
    jobs: list[str] = []
    try:
        for i in range(runs + 1):  # round 0: warm-up
            for name in names[i % len(names) :] + names[: i % len(names)]:
                argv, submits = cases[name]
                start = time.perf_counter()
                proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
                ms = (time.perf_counter() - start) * 1000
                if proc.returncode != 0:
                    raise RuntimeError(f"{name} exited {proc.returncode}: {proc.stderr[-2000:]}")
                if submits:
                    jobs.append(last_line(proc.stdout) if name == "submitit trivial" else json_job_id(proc.stdout))
                if i:
                    samples[name].append(ms)
    finally:
        if jobs:
            subprocess.run(["scancel", *jobs], env=env, check=False)
    return samples


def bench_job_cases(runs: int, env: dict[str, str], tmp: Path) -> dict[str, list[float]]:
    config = write_config(
        tmp / "single.json",
        {"experiment": "whatif", "source_directory": str(tmp / "project"), "entry_script": "first_line.py"},
    )
    (tmp / "project").mkdir()
    shutil.copy(BENCH / "_first_line.py", tmp / "project" / "first_line.py")
    source = queued_run_dir(config, tmp / "queued", env)
    base = clean_job_env(env)
    cases: dict[str, list[str]] = {
        "python first_line.py": [PY, "-u", str(source / "snapshot" / "first_line.py")],
        "hpc_tf.job": [PY, "-u", "-m", "hpc_tf.job", "."],
        "hpc_tf.job wrapper none": [PY, "-u", WRAPPER, "none", "hpc_tf.job", "."],
    }
    for patch in JOB_PATCHES:
        cases[f"hpc_tf.job +{patch}"] = [PY, "-u", WRAPPER, patch, "hpc_tf.job", "."]
    cases["hpc_tf.job +all (spawnfirst)"] = [PY, "-u", WRAPPER, JOB_ALL, "hpc_tf.job", "."]
    cases["hpc_tf.job +all (fastpath)"] = [
        PY,
        "-u",
        WRAPPER,
        JOB_ALL.replace("spawnfirst", "fastpath"),
        "hpc_tf.job",
        ".",
    ]
    names = list(cases)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for i in range(runs + 1):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            copy = tmp / f"copy-{i}-{names.index(name)}"
            shutil.copytree(source, copy, symlinks=True)
            if name == "python first_line.py":
                out = copy / "by-hand.out"
                t0 = time.time()
                with open(out, "wb") as handle:
                    subprocess.run(cases[name], cwd=copy / "snapshot", env=base, stdout=handle, check=True)
            else:
                out = copy / "logs" / "rank-0.out"
                t0 = time.time()
                subprocess.run(cases[name], cwd=copy, env=base, check=True)
            first = first_line_at(Finished(t0, "", out, "COMPLETED"))
            if i:
                samples[name].append((first - t0) * 1000)
            shutil.rmtree(copy)
    return samples


def table(title: str, samples: dict[str, list[float]], baseline: str) -> dict[str, dict[str, float]]:
    med = {n: statistics.median(v) for n, v in samples.items()}
    print(f"\n{title}")
    print(f"{'case':<34} {'median':>8} {'min':>8} {'vs ' + baseline:>24}")
    for name, v in samples.items():
        print(f"{name:<34} {med[name]:>8.1f} {min(v):>8.1f} {med[name] - med[baseline]:>+24.1f}")
    return {n: {"median_ms": med[n], "min_ms": min(v), "n": len(v)} for n, v in samples.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=15, help="interleaved runs per CLI case (default 15)")
    p.add_argument("--job-runs", type=int, default=15, help="interleaved runs per in-job case (default 15)")
    args = p.parse_args()
    env = cluster_env()
    with tempfile.TemporaryDirectory(prefix="hpc_tf-bench-whatif-") as tmp_name:
        tmp = Path(tmp_name)
        cli = bench_cli_cases(args.runs, env, tmp)
        job = bench_job_cases(args.job_runs, env, tmp)
    cli_stats = table(
        f"CLI, whole process (ms, {args.runs} interleaved runs)",
        {k: v for k, v in cli.items() if not k.startswith("render")},
        "submit wrapper none",
    )
    render_stats = table(
        f"render, whole process (ms, {args.runs} interleaved runs)",
        {k: v for k, v in cli.items() if k.startswith("render") or k == "python -c pass"},
        "render wrapper none",
    )
    job_stats = table(
        f"in-job runtime offline: start -> entry's first line (ms, {args.job_runs} interleaved runs)",
        job,
        "hpc_tf.job wrapper none",
    )
    trivial = cli_stats["submitit trivial"]["median_ms"]
    print("\nsubmit / submitit trivial (medians), goal <= 1.2:")
    for name in ("submit", "submit wrapper none", "submit +gc,nosubmitit", "submit +all"):
        print(f"  {name:<30} {cli_stats[name]['median_ms'] / trivial:.2f}")
    print("render (median ms), goal <= 120:")
    for name in ("render", "render +gc", "render +all"):
        print(f"  {name:<30} {render_stats[name]['median_ms']:.1f}")
    write_results(
        RESULTS,
        {
            "runs": args.runs,
            "job_runs": args.job_runs,
            "cli": cli_stats,
            "render": render_stats,
            "in_job": job_stats,
            "samples_ms": {"cli": cli, "in_job": job},
        },
    )


if __name__ == "__main__":
    main()
