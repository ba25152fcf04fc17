"""Wall-time benchmark of the hpc_tf CLI against its floors, measured as whole processes.

What a user waits for is the whole process: interpreter start, imports, config parsing, sbatch.
So every case is one subprocess timed with time.perf_counter() around it. The machine is small
and shared, so the cases run interleaved (one of each per round, the starting case rotating each
round) and we report medians: drift in machine load then hits every case alike, and the ratios
stay meaningful even when the absolute numbers move.

Submitted jobs are held (`--hold`), so the cluster never runs them; all of them are cancelled
with one scancel at the end, also when the benchmark fails.

Usage (from anywhere; the dev cluster must be up, see scripts/dev-cluster.sh):
    python bench/bench_cli.py [--runs 15] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
CONFIG = "configs/digits.yaml"
RESULTS = BENCH / "results" / "cli.json"
PY = sys.executable  # the real interpreter, not a pyenv shim: shims add their own start-up


@dataclass(frozen=True)
class Case:
    """One process to time; job_id extracts the Slurm job id from its stdout, if it submits."""

    name: str
    argv: list[str]
    job_id: Callable[[str], str] | None = None


def sbatch_job_id(out: str) -> str:
    """`sbatch --parsable` prints `ID` or `ID;CLUSTER`."""
    return out.strip().split(";")[0]


def json_job_id(out: str) -> str:
    """`hpc_tf submit --json` prints {run_id, job_id, run_dir, backend}."""
    return str(json.loads(out)["job_id"])


def last_line(out: str) -> str:
    """The submitit helper prints the job id as its last line."""
    return out.strip().splitlines()[-1]


def make_cases(tmp: Path) -> list[Case]:
    """The six processes, floors first; submitting cases write under tmp."""
    return [
        Case("python -c pass", [PY, "-c", "pass"]),
        Case("bare sbatch", ["sbatch", "--parsable", "--hold", "-o", "/dev/null", "--wrap", "true"],
             sbatch_job_id),
        Case("validate", [PY, "-m", "hpc_tf", "validate", CONFIG]),
        Case("render", [PY, "-m", "hpc_tf", "render", CONFIG, "--backend", "slurm"]),
        Case("submit", [PY, "-m", "hpc_tf", "submit", CONFIG, "--backend", "slurm",
                        "--runs-dir", str(tmp / "runs"), "--json",
                        "--set", "compute_target.additional_parameters.hold=true"], json_job_id),
        Case("submitit trivial", [PY, str(BENCH / "_submitit_trivial.py"), str(tmp / "submitit")],
             last_line),
    ]


def cluster_env() -> dict[str, str]:
    """os.environ plus the dev cluster's exports, unless SLURM_CONF is already set.

    Saves the caller the `eval "$(scripts/dev-cluster.sh env)"` step; an explicit SLURM_CONF wins.
    """
    env = dict(os.environ)
    # Users' interpreters cache bytecode; a session that disables it would time compilation instead.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    script = REPO / "scripts" / "dev-cluster.sh"
    if "SLURM_CONF" in env or not script.exists():
        return env
    out = subprocess.run([str(script), "env"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        words = shlex.split(line)
        if words[:1] == ["export"]:
            env.update(word.split("=", 1) for word in words[1:] if "=" in word)
    return env


def check_cluster(env: dict[str, str]) -> None:
    """Fail early with a hint rather than timing error paths of a cluster that is down."""
    if subprocess.run(["scontrol", "ping"], env=env, capture_output=True).returncode != 0:
        sys.exit("bench_cli: Slurm does not answer; run `scripts/dev-cluster.sh up` first")


def run_once(case: Case, env: dict[str, str]) -> tuple[float, str | None]:
    """Time one whole process in ms; return its job id too. A failing case aborts the bench."""
    start = time.perf_counter()
    proc = subprocess.run(case.argv, cwd=REPO, env=env, capture_output=True, text=True)
    elapsed_ms = (time.perf_counter() - start) * 1000
    if proc.returncode != 0:
        raise RuntimeError(f"{case.name} exited {proc.returncode}: {shlex.join(case.argv)}\n"
                           f"{proc.stderr.strip()}")
    return elapsed_ms, case.job_id(proc.stdout) if case.job_id else None


def check_held(job_ids: list[str], env: dict[str, str]) -> None:
    """Make sure the jobs really are held: a job that runs would load the cluster under us."""
    out = subprocess.run(["squeue", "-h", "-o", "%i %r", "-j", ",".join(job_ids)],
                         env=env, capture_output=True, text=True).stdout
    reasons = dict(line.split(None, 1) for line in out.strip().splitlines())
    bad = {j: reasons.get(j, "not in queue") for j in job_ids if reasons.get(j) != "JobHeldUser"}
    if bad:
        raise RuntimeError(f"jobs not held: {bad}")


def run_rounds(cases: list[Case], runs: int, env: dict[str, str],
               job_ids: list[str]) -> dict[str, list[float]]:
    """One untimed warm-up round (page cache, .pyc), then `runs` interleaved, rotated rounds."""
    for case in cases:
        _, job = run_once(case, env)
        job_ids.extend([job] if job else [])
    check_held(job_ids, env)
    samples: dict[str, list[float]] = {case.name: [] for case in cases}
    for i in range(runs):
        for case in cases[i % len(cases):] + cases[:i % len(cases)]:
            ms, job = run_once(case, env)
            samples[case.name].append(ms)
            job_ids.extend([job] if job else [])
    return samples


def cancel(job_ids: list[str], env: dict[str, str]) -> None:
    """One scancel for every job submitted: they are held, so nothing ran."""
    if job_ids:
        subprocess.run(["scancel", *job_ids], env=env, check=False)


def summarize(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Median, min and p90 (inclusive deciles) per case, in ms."""
    return {name: {"median_ms": statistics.median(ms), "min_ms": min(ms),
                   "p90_ms": statistics.quantiles(ms, n=10, method="inclusive")[-1]}
            for name, ms in samples.items()}


def ratios(stats: dict[str, dict[str, float]]) -> dict[str, float]:
    """The goal figures: submit against submitit alone, and what submit adds above its floors."""
    med = {name: s["median_ms"] for name, s in stats.items()}
    return {
        "submit/submitit_trivial": med["submit"] / med["submitit trivial"],
        "render/python_floor": med["render"] / med["python -c pass"],
        "submit_overhead_above_floor_ms":
            med["submit"] - (med["python -c pass"] + med["bare sbatch"]),
    }


def print_table(stats: dict[str, dict[str, float]], rat: dict[str, float], runs: int) -> None:
    """A fixed-width table, then the ratios."""
    print(f"\n{'case':<18} {'median':>8} {'min':>8} {'p90':>8}   (ms, {runs} interleaved runs)")
    for name, s in stats.items():
        print(f"{name:<18} {s['median_ms']:>8.1f} {s['min_ms']:>8.1f} {s['p90_ms']:>8.1f}")
    print()
    print(f"submit / submitit trivial (median ratio): {rat['submit/submitit_trivial']:.2f}"
          "   goal <= 1.0")
    print(f"render / python -c pass   (median ratio): {rat['render/python_floor']:.2f}")
    print("submit overhead above floor (submit - python - bare sbatch): "
          f"{rat['submit_overhead_above_floor_ms']:.1f} ms")


@dataclass(frozen=True)
class ImportRow:
    """One line of -X importtime output; the module name keeps its nesting indent."""

    module: str
    self_ms: float
    cumulative_ms: float


def profile_imports(env: dict[str, str], top: int = 15) -> list[ImportRow]:
    """Run render once under -X importtime; return the `top` imports by cumulative time."""
    argv = [PY, "-X", "importtime", "-m", "hpc_tf", "render", CONFIG, "--backend", "slurm"]
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"profiled render exited {proc.returncode}")
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cum_us, module = line.removeprefix("import time:").split("|")
        rows.append(ImportRow(module.rstrip(), int(self_us) / 1000, int(cum_us) / 1000))
    return sorted(rows, key=lambda r: -r.cumulative_ms)[:top]


def print_profile(rows: list[ImportRow]) -> None:
    """The slowest imports; nested modules count inside their parents' cumulative time."""
    print(f"\n{'cumulative':>10} {'self':>8}  import   (ms, python -X importtime ... render)")
    for r in rows:
        print(f"{r.cumulative_ms:>10.1f} {r.self_ms:>8.1f} {r.module}")


def write_json(stats: dict[str, dict[str, float]], rat: dict[str, float],
               samples: dict[str, list[float]], profile: list[ImportRow] | None) -> None:
    """Everything, raw samples included, so later runs can be compared offline."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    doc = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "python": PY,
           "python_version": platform.python_version(), "cpus": os.cpu_count(),
           "loadavg_after": os.getloadavg(), "runs": len(next(iter(samples.values()))),
           "stats": stats, "ratios": rat, "samples_ms": samples, "importtime_top": [asdict(r) for r in profile or []]}
    RESULTS.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(REPO)}")


def parse_args() -> argparse.Namespace:
    """--runs N (default 15), --profile."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=15, help="timed runs per case (default 15)")
    p.add_argument("--profile", action="store_true",
                   help="also run render once under -X importtime and show the slowest imports")
    args = p.parse_args()
    if args.runs < 2:
        p.error("--runs must be at least 2 (p90 needs two samples)")
    return args


def main() -> None:
    """Bench, cancel every held job whatever happens, report, optionally profile."""
    args = parse_args()
    env = cluster_env()
    check_cluster(env)
    job_ids: list[str] = []
    with tempfile.TemporaryDirectory(prefix="hpc_tf-bench-") as tmp:
        try:
            samples = run_rounds(make_cases(Path(tmp)), args.runs, env, job_ids)
        finally:
            cancel(job_ids, env)
    stats = summarize(samples)
    rat = ratios(stats)
    print_table(stats, rat, args.runs)
    profile = profile_imports(env) if args.profile else None
    if profile is not None:
        print_profile(profile)
    write_json(stats, rat, samples, profile)


if __name__ == "__main__":
    main()
