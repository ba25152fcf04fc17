"""Environment benchmarks (issue: environments): what a built environment costs at submit, and uv vs pip.

1. Cache hit: `hpc_tf submit` of a held job with `pip_packages` whose environment is already built,
   next to the same config without packages, interleaved; the goal is <= 0.2 s extra (median).
2. Cold build: the same small package set built from nothing with uv and with pip (fresh cache
   directories, pip's and uv's own download caches warm so the network is not what is measured).

    python bench/bench_envs.py [--runs 10] [--builds 3]

Results go to bench/results/envs.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_cli import cluster_env

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ["six==1.16.0", "tomli==2.0.1", "packaging==24.1"]


def write_config(tmp: Path, packages: list[str]) -> Path:
    """A held single-process job (it never runs: only submission is timed)."""
    src = tmp / "src"
    src.mkdir(exist_ok=True)
    (src / "train.py").write_text("print('hi')\n")
    path = tmp / ("env.json" if packages else "plain.json")
    path.write_text(
        json.dumps(
            {
                "experiment": "bench-envs",
                "source_directory": str(src),
                "entry_script": "train.py",
                "pip_packages": packages,
                "compute_target": {"additional_parameters": {"hold": True}},
            }
        )
    )
    return path


def submit_ms(config: Path, runs: Path, env: dict[str, str]) -> tuple[float, str]:
    """Wall time of one `hpc_tf submit` process, and the job id to cancel."""
    argv = [
        sys.executable,
        "-m",
        "hpc_tf",
        "submit",
        str(config),
        "--backend",
        "slurm",
        "--json",
        "--runs-dir",
        str(runs),
    ]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = (time.perf_counter() - start) * 1000
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    return elapsed, json.loads(proc.stdout)["job_id"]


def cache_hit(runs: int, env: dict[str, str], tmp: Path) -> dict[str, float]:
    """Median submit time with a built environment vs without one, interleaved."""
    env = {**env, "HPC_TF_ENV_CACHE": str(tmp / "cache")}
    plain, with_env = write_config(tmp, []), write_config(tmp, PACKAGES)
    jobs = [submit_ms(with_env, tmp / "runs", env)[1]]  # builds the environment (not timed)
    samples: dict[str, list[float]] = {"no environment": [], "built environment": []}
    try:
        for _ in range(runs):
            for name, config in (("no environment", plain), ("built environment", with_env)):
                ms, job = submit_ms(config, tmp / "runs", env)
                samples[name].append(ms)
                jobs.append(job)
    finally:
        subprocess.run(["scancel", *jobs], env=env, check=False)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return {**medians, "extra_ms": medians["built environment"] - medians["no environment"]}


def cold_builds(builds: int, tmp: Path) -> dict[str, float]:
    """Seconds to build the package set from nothing, uv vs pip (interleaved, fresh cache roots)."""
    sys.path.insert(0, str(REPO))
    from hpc_tf.envs.build import EnvRequest, ensure

    request = EnvRequest("pip", tuple(PACKAGES), base_python=sys.executable, base_version=sys.version)
    samples: dict[str, list[float]] = {"uv": [], "pip": []}
    for i in range(builds + 1):  # round 0 warms uv's and pip's download caches
        for tool in ("uv", "pip"):
            # settings are read once by the CLI and passed down: ensure() takes the tool (HPC_TF_ENV_TOOL's value)
            start = time.perf_counter()
            record = ensure(tmp / f"cold-{tool}-{i}", request, tool=tool)
            assert record["tool"] == tool, record["tool"]
            if i:
                samples[tool].append(time.perf_counter() - start)
    medians = {tool: statistics.median(values) for tool, values in samples.items()}
    return {**medians, "pip_over_uv": medians["pip"] / medians["uv"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--builds", type=int, default=3)
    args = parser.parse_args()
    env = cluster_env()
    with tempfile.TemporaryDirectory(prefix="hpc_tf-bench-envs-") as tmp:
        hit = cache_hit(args.runs, env, Path(tmp))
        cold = cold_builds(args.builds, Path(tmp))
    print(f"submit, no environment:      {hit['no environment']:7.1f} ms (median of {args.runs})")
    print(f"submit, built environment:   {hit['built environment']:7.1f} ms")
    print(f"extra for the environment:   {hit['extra_ms']:7.1f} ms   goal <= 200 ms")
    print(f"cold build with uv:          {cold['uv']:7.2f} s (median of {args.builds})")
    print(f"cold build with pip:         {cold['pip']:7.2f} s")
    print(f"pip / uv:                    {cold['pip_over_uv']:7.1f}x")
    out = REPO / "bench" / "results" / "envs.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"cache_hit": hit, "cold_build": cold, "packages": PACKAGES}, indent=1))


if __name__ == "__main__":
    main()
