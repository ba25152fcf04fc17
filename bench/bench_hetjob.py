"""Per-role placement (issue 12): what a heterogeneous job costs against the same job in one allocation.

The seeded parameter-server example (configs/parameter-server/seeded.py: chief, 1 ps, 2 workers, 60 steps) is
submitted N times in each of three forms, interleaved: `flat` (node_count 4, one allocation), `het` (roles: chief and
ps on `cpu`, workers on `gpu`, one srun step across the components) and `het-steps` (the same roles on a cluster with
SchedulerParameters=disable_hetjob_steps: one step per component under hpc_tf.job.hetsteps). Per run, from the
run directory, polled every 50 ms (its records' times have one-second resolution): submit's wall time (the CLI,
including `scontrol show config` for roles), submit -> the first task running (its tasks/rank-N.json appears), first ->
last task running, the chief's end -> the last server's end, and submit -> `hpc_tf wait` returning (COMPLETED). Every run's final loss must be the same (asserted). Medians and the
ratios het/flat, het-steps/flat.

Usage:  python bench/bench_hetjob.py [--runs 5]
It brings up two dev clusters of its own (/var/tmp/hpctf-bench-het port 19950, /var/tmp/hpctf-bench-hetsteps port
19960 with HPC_TF_CLUSTER_HETJOB_STEPS=0) and takes them down at the end. Results: bench/results/hetjob.json.
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
from typing import Any

from _jobs import own_cluster_env

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
CLUSTER = REPO / "scripts" / "dev-cluster.sh"
CLUSTERS = {
    "one": {"HPC_TF_CLUSTER_DIR": "/var/tmp/hpctf-bench-het", "HPC_TF_CLUSTER_PORT": "19950"},
    "per_component": {
        "HPC_TF_CLUSTER_DIR": "/var/tmp/hpctf-bench-hetsteps",
        "HPC_TF_CLUSTER_PORT": "19960",
        "HPC_TF_CLUSTER_HETJOB_STEPS": "0",
    },
}
SOURCE = {"source_directory": str(REPO / "configs" / "parameter-server"), "entry_script": "seeded.py"}
PS_JOB = {"distributed_backend": "ps", "worker_count": 2, "parameter_server_count": 1, "max_run_duration_seconds": 900}
FORMS: dict[str, tuple[str, dict[str, Any]]] = {
    "flat": ("one", {"node_count": 4}),
    "het": (
        "one",
        {
            "use_gpu": True,
            "compute_target": {"partition": "cpu", "mem": 1000},
            "roles": {"worker": {"partition": "gpu", "gpus_per_node": 1, "mem": 1000}},
        },
    ),
}
FORMS["het-steps"] = ("per_component", FORMS["het"][1])


def cluster_env(knobs: dict[str, str]) -> dict[str, str]:
    return own_cluster_env(knobs)


def watch(run_dir: Path, t0: float, env: dict[str, str], poll: float = 0.05, timeout: float = 600) -> dict[str, Any]:
    """Poll the run directory while `hpc_tf wait` follows the run (status.json turns final once the scheduler has
    confirmed the end; the records' own times have one-second resolution): when each task's record first appears
    (its entry script started) and first has an end, relative to the submit."""
    waiter = subprocess.Popen([PY, "-m", "hpc_tf", "wait", str(run_dir)], env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    started: dict[int, float] = {}
    ended: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = time.time() - t0
        for path in (run_dir / "tasks").glob("rank-*.json"):
            rank = int(path.stem.split("-")[1])
            started.setdefault(rank, now)
            try:
                if json.loads(path.read_text()).get("end_time"):
                    ended.setdefault(rank, now)
            except (OSError, ValueError):  # being replaced
                pass
        if waiter.poll() is not None:
            status = json.loads((run_dir / "status.json").read_text())
            return {"status": status, "started": started, "ended": ended, "final_s": time.time() - t0}
        time.sleep(poll)
    waiter.kill()
    raise TimeoutError(f"{run_dir} not final after {timeout} s")


def one_run(tmp: Path, form: str, env: dict[str, str], n: int) -> dict[str, Any]:
    config = tmp / f"{form}-{n}.yaml"
    config.write_text(json.dumps({"experiment": f"bench-{form}", **SOURCE, **PS_JOB, **FORMS[form][1]}))
    t0 = time.time()
    proc = subprocess.run([PY, "-m", "hpc_tf", "submit", str(config), "--runs-dir", str(tmp / "runs"), "--json"],
                          capture_output=True, text=True, env=env, cwd=REPO, check=True)  # fmt: skip
    submit_s = time.time() - t0
    run_dir = Path(json.loads(proc.stdout)["run_dir"])
    seen = watch(run_dir, t0, env)
    assert seen["status"]["state"] == "COMPLETED", seen["status"]
    started, ended = seen["started"], seen["ended"]
    assert sorted(started) == sorted(ended) == [0, 1, 2, 3], seen
    tasks = sorted(
        (json.loads(p.read_text()) for p in (run_dir / "tasks").glob("rank-*.json")), key=lambda t: t["rank"]
    )
    return {
        "form": form,
        "submit_s": submit_s,  # the CLI: validate, render, snapshot, sbatch (and scontrol show config for roles)
        "first_task_s": min(started.values()),  # submit -> the first entry script/server running
        "task_spread_s": max(started.values()) - min(started.values()),  # first -> last task running
        "servers_stop_s": max(ended[r] for r in (1, 2, 3)) - ended[0],  # the chief's end -> the last server's
        "final_s": seen["final_s"],  # submit -> `hpc_tf wait` returns (COMPLETED)
        "loss": json.loads((run_dir / "outputs" / "metrics.json").read_text())["loss"],
        "hosts": [t["host"] for t in tasks],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    envs = {name: cluster_env(knobs) for name, knobs in CLUSTERS.items()}
    samples: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-het-") as tmp:
            for n in range(args.runs):
                for form, (cluster, _) in FORMS.items():
                    samples.append(one_run(Path(tmp), form, envs[cluster], n))
                    print(json.dumps(samples[-1]), flush=True)
    finally:
        for knobs in CLUSTERS.values():
            subprocess.run([str(CLUSTER), "down"], env={**os.environ, **knobs}, stdout=subprocess.DEVNULL)
    losses = {s["loss"] for s in samples}
    keys = ("submit_s", "first_task_s", "task_spread_s", "servers_stop_s", "final_s")
    medians = {f: {k: statistics.median(s[k] for s in samples if s["form"] == f) for k in keys} for f in FORMS}
    ratios = {f: {k: medians[f][k] / medians["flat"][k] for k in keys if medians["flat"][k]} for f in FORMS}
    out = {"runs": args.runs, "same_loss": len(losses) == 1, "losses": sorted(losses), "medians": medians,
           "ratios_to_flat": ratios, "samples": samples}  # fmt: skip
    results = REPO / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "hetjob.json").write_text(json.dumps(out, indent=1))
    for form in FORMS:
        row = "  ".join(f"{k} {medians[form][k]:6.2f} ({ratios[form].get(k, 1):.2f}x)" for k in keys)
        print(f"{form:10} {row}")
    print(f"same final loss in all {len(samples)} runs: {len(losses) == 1} {sorted(losses)}")


if __name__ == "__main__":
    main()
