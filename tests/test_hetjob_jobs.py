"""Per-role placement (issue 12) on the real dev cluster: the parameter-server example as one heterogeneous job, the
chief and the ps on `cpu` partition nodes, the workers on `gpu` partition nodes (scripts/dev-cluster.sh) — with one
step across the components (the default), and on a second cluster instance that sets
SchedulerParameters=disable_hetjob_steps (one step per component); a third with sched/builtin, where Slurm never
takes a heterogeneous job, shows why submit refuses one there before writing anything."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import cluster_instance, hpc, make_project, read_status, wait_for, write_config
from tests.test_requeue_distributed import PS as PS_CHECKPOINTED

pytestmark = [pytest.mark.slurm, pytest.mark.tf]

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "configs" / "parameter-server-hetjob.yaml"
CPU, GPU = {"n1", "n2"}, {"n3", "n4"}
ROLES = {"worker": {"partition": "gpu", "gpus_per_node": 1, "mem": 1000}}
PS_JOB = {"distributed_backend": "ps", "worker_count": 2, "parameter_server_count": 1}
HET = {**PS_JOB, "use_gpu": True, "compute_target": {"partition": "cpu", "mem": 1000}, "roles": ROLES}
RAISES = """
import json, os, time
task = json.loads(os.environ["TF_CONFIG"])["task"]
if (task["type"], task["index"]) == ("worker", 1):
    time.sleep(3)
    raise RuntimeError("worker 1 fails")
time.sleep(600)
"""


def tasks(run_dir: Path) -> list[dict]:
    return sorted((json.loads(p.read_text()) for p in (run_dir / "tasks").glob("rank-*.json")), key=lambda t: t["rank"])


def when(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def squeue(job_id: str, env: dict | None = None) -> list[str]:
    argv = ["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%i|%T"]
    return subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})}).stdout.split()


def submit(config: Path, tmp_path: Path, env: dict | None = None) -> tuple[Path, str]:
    proc = hpc("submit", str(config), "--runs-dir", str(tmp_path / "runs"), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    return Path(info["run_dir"]), str(info["job_id"])


def project_config(tmp_path: Path, script: str, **keys: object) -> Path:
    project = make_project(tmp_path / "proj", script)
    return write_config(tmp_path / "c.yaml", experiment="het", source_directory=str(project), entry_script="train.py",
                        max_run_duration_seconds=900, **keys)  # fmt: skip


def check_placement(run_dir: Path, steps: str) -> None:
    """Every task where its TF_CONFIG says, each role on its partition, GPUs as the roles ask; one COMPLETED run."""
    status = read_status(run_dir)
    assert (status["state"], status["exit_code"]) == ("COMPLETED", 0), status
    job = json.loads((run_dir / "job.json").read_text())
    assert [(c["role"], c["node_count"], c["first_rank"]) for c in job["components"]] == [
        ("chief", 1, 0), ("ps", 1, 1), ("worker", 2, 2),
    ]  # fmt: skip
    assert job["het_steps"] == steps
    cluster = json.loads((run_dir / "outputs" / "metrics.json").read_text())["cluster"]
    done = tasks(run_dir)
    roles = [(t["role"], t["index"], t["host"], t["cuda_visible_devices"]) for t in done]
    assert [r[:2] for r in roles] == [("chief", 0), ("ps", 0), ("worker", 0), ("worker", 1)]
    for role, index, host, gpus in roles:
        assert cluster[role][index].split(":")[0] == host  # each task runs where its TF_CONFIG says
        assert host in (GPU if role == "worker" else CPU), (role, host)
        assert gpus == ("" if role == "ps" else ("0" if role == "worker" else None))
    chief_end = when(done[0]["end_time"])
    for t in done[1:]:  # the managed servers stop on their own once the chief has ended
        assert t["stopped_after_chief"] and 0 <= when(t["end_time"]) - chief_end < 15, t


def check_first_failure(run_dir: Path, job_id: str, env: dict | None = None) -> None:
    """A worker that raises: the job FAILED at once, the worker named, nothing left in squeue."""
    hpc("wait", str(run_dir), timeout=300, env=env)
    status = read_status(run_dir)
    assert status["state"] == "FAILED", status
    failure = status["first_failure"]
    assert (failure["role"], failure["index"], failure["rank"], failure["exit_code"]) == ("worker", 1, 3, 1), failure
    assert failure["host"] in GPU
    done = tasks(run_dir)
    assert len(done) == 4 and all(t.get("end_time") for t in done), done
    started = min(when(t["start_time"]) for t in done)
    assert max(when(t["end_time"]) for t in done) - started < 45  # the others were ended, not left for 600 s
    assert "RuntimeError: worker 1 fails" in (run_dir / "logs" / "rank-3.err").read_text()
    wait_for(lambda: all(line.endswith(("FAILED", "CANCELLED", "COMPLETED")) for line in squeue(job_id, env)), 60)
    assert not [line for line in squeue(job_id, env) if line.endswith(("RUNNING", "PENDING", "COMPLETING"))]


# ------------------------------------------------------------------------------------------- one step across components
def test_the_ps_example_places_each_role_on_its_partition(slurm: dict, tmp_path: Path) -> None:
    run_dir, job_id = submit(EXAMPLE, tmp_path)
    hpc("wait", str(run_dir), timeout=600)
    check_placement(run_dir, "one")
    assert subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True).stdout == ""
    status = hpc("status", str(run_dir))
    assert status.returncode == 0 and "COMPLETED" in status.stdout, status.stdout


def test_a_worker_that_raises_fails_the_whole_job(slurm: dict, tmp_path: Path) -> None:
    run_dir, job_id = submit(project_config(tmp_path, RAISES, ps_mode="script", **HET), tmp_path)
    check_first_failure(run_dir, job_id)


def test_a_worker_server_killed_fails_the_job_naming_it_and_leaves_no_process(slurm: dict, tmp_path: Path) -> None:
    """A fault made for real: SIGKILL to worker 1's TensorFlow server (managed ps mode) in the middle of training."""
    import shutil
    import signal

    from tests.test_faults import PROJECTS, _alive, _task_pids

    src = tmp_path / "ps_loop"
    shutil.copytree(PROJECTS / "ps_loop", src)
    config = write_config(tmp_path / "c.yaml", experiment="kill", source_directory=str(src), entry_script="train.py",
                          script_params={"--steps": 4000, "--slow": 0.05}, **HET)  # fmt: skip
    run_dir, _ = submit(config, tmp_path)
    wait_for((run_dir / "outputs" / "started").exists, 180)
    victim = json.loads((run_dir / "tasks" / "rank-3.json").read_text())
    os.kill(victim["child_pid"], signal.SIGKILL)
    start = time.monotonic()
    hpc("wait", str(run_dir), timeout=150)
    assert time.monotonic() - start < 60
    status = read_status(run_dir)
    got = status["first_failure"]
    assert (status["state"], got["rank"], got["role"], got["index"], got["exit_code"]) == (
        "FAILED",
        3,
        "worker",
        1,
        137,
    )
    assert got["host"] == victim["host"] and victim["host"] in GPU
    wait_for(lambda: not [pid for pid in _task_pids(run_dir) if _alive(pid)], timeout=30)


def test_cancel_ends_every_component(slurm: dict, tmp_path: Path) -> None:
    run_dir, job_id = submit(EXAMPLE, tmp_path)
    wait_for(lambda: read_status(run_dir)["state"] == "RUNNING", 120)
    assert hpc("cancel", str(run_dir)).returncode == 0
    hpc("wait", str(run_dir), timeout=120)
    assert read_status(run_dir)["state"] == "CANCELLED"
    left = squeue(job_id)
    assert len(left) == 3 and all(line.endswith(("CANCELLED", "COMPLETED")) for line in left), left


def test_the_seeded_example_gives_the_same_loss_with_and_without_roles(slurm: dict, tmp_path: Path) -> None:
    source = {"source_directory": str(REPO / "configs" / "parameter-server"), "entry_script": "seeded.py"}
    flat = write_config(tmp_path / "flat.yaml", experiment="seeded", node_count=4, **PS_JOB, **source)
    het = write_config(tmp_path / "het.yaml", experiment="seeded", **HET, **source)
    runs = [submit(flat, tmp_path)[0], submit(het, tmp_path)[0]]
    for run_dir in runs:
        hpc("wait", str(run_dir), timeout=600)
        assert read_status(run_dir)["state"] == "COMPLETED", read_status(run_dir)
    metrics = [json.loads((r / "outputs" / "metrics.json").read_text()) for r in runs]
    assert metrics[0]["loss"] == metrics[1]["loss"] and metrics[0]["accuracy"] == metrics[1]["accuracy"], metrics
    workers = [[w.split(":")[0] for w in m["cluster"]["worker"]] for m in metrics]
    assert set(workers[1]) == GPU and len(set(workers[0])) == 2  # placed differently, computed the same


def test_requeue_acts_on_the_leader_and_brings_every_component_back(slurm: dict, tmp_path: Path) -> None:
    config = project_config(
        tmp_path, PS_CHECKPOINTED, distributed_backend="ps", worker_count=1, parameter_server_count=1,
        compute_target={"partition": "cpu", "mem": 1000}, roles={"worker": {"partition": "gpu", "mem": 1000}},
        requeue_on=["preemption"],
    )  # fmt: skip
    run_dir, job_id = submit(config, tmp_path)
    epochs = run_dir / "outputs" / "epochs.jsonl"
    wait_for(lambda: epochs.exists() and len(epochs.read_text().splitlines()) >= 3, 240)
    for other, said in (
        (f"{job_id}+1", "Invalid job id specified"),
        (str(int(job_id) + 1), "not heterogeneous job leader"),
    ):
        refused = subprocess.run(["scontrol", "requeue", other], capture_output=True, text=True)  # only the leader
        assert refused.returncode == 1 and said in refused.stderr, refused.stderr  # can be requeued (Slurm 22.05)
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)  # the leader's id: what a site would signal
    hpc("wait", str(run_dir), timeout=400)
    status = read_status(run_dir)
    assert (status["state"], status["restarts"], len(status["attempts"])) == ("COMPLETED", 1, 2), status
    assert status["attempts"][0]["requeue"].startswith("requeued after preemption"), status["attempts"][0]
    shown = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True).stdout
    records = shown.splitlines()
    assert len(records) == 3 and all(f"HetJobId={job_id}" in r for r in records), shown  # chief, ps, worker
    assert all("Restarts=1" in r and "JobState=COMPLETED" in r for r in records), shown  # all came back, once
    rounds = [json.loads(line) for line in epochs.read_text().splitlines()]
    after = [e for e in rounds if e["attempt"] == 1]
    assert after and after[-1]["epoch"] == 29
    assert {e["cluster"]["worker"][0].split(":")[0] for e in after} <= GPU  # the worker came back on a gpu node


def test_refusals_name_the_keys(slurm: dict, tmp_path: Path) -> None:
    counts = write_config(tmp_path / "counts.yaml", experiment="x", source_directory=str(REPO / "configs" /
                          "parameter-server"), entry_script="train.py", **{**HET, "roles": {"worker": {"node_count": 3}}})  # fmt: skip
    sweep = write_config(
        tmp_path / "sweep.yaml", experiment="x", source_directory=str(REPO / "configs" / "parameter-server"),
        entry_script="train.py", **HET,
        hyperdrive={"hyperparameter_sampling": {"type": "grid", "parameter_space": {"--lr": "choice(0.1, 0.2)"}},
                    "primary_metric_name": "loss", "primary_metric_goal": "minimize", "max_total_runs": 2},
    )  # fmt: skip
    for config, words in ((counts, "roles.worker"), (sweep, "no arrays of heterogeneous jobs")):
        proc = hpc("submit", str(config), "--runs-dir", str(tmp_path / "runs"))
        assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "runs").exists()  # refused before anything was written


# ------------------------------------------------------------------------------------------- other cluster configs
@pytest.fixture(scope="module")
def per_component_cluster(slurm_cluster: dict) -> Iterator[dict[str, str]]:
    """4 nodes with SchedulerParameters=disable_hetjob_steps: no step may span components."""
    yield from cluster_instance("hetsteps", "19817", HPC_TF_CLUSTER_HETJOB_STEPS="0")


def test_one_step_per_component_where_the_site_disables_steps_across_them(
    per_component_cluster: dict, tmp_path: Path
) -> None:
    env = per_component_cluster
    shown = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, env={**os.environ, **env})
    assert "disable_hetjob_steps" in shown.stdout
    explained = hpc("explain", str(EXAMPLE), env=env)
    assert explained.returncode == 0 and "disable_hetjob_steps" in explained.stderr, explained.stderr
    run_dir, job_id = submit(EXAMPLE, tmp_path, env)
    assert "-m hpc_tf.job.hetsteps srun" in (run_dir / "job.sh").read_text()
    hpc("wait", str(run_dir), timeout=600, env=env)
    check_placement(run_dir, "per_component")
    logs = sorted(p.name for p in (run_dir / "logs").glob("launcher-het*.log"))
    assert logs == ["launcher-het0-0.log", "launcher-het1-0.log", "launcher-het2-0.log", "launcher-het2-1.log"], logs
    # and a failing worker ends the other components' steps at once, named as the first failure
    failing = tmp_path / "failing"
    failing.mkdir()
    run_dir, job_id = submit(project_config(failing, RAISES, ps_mode="script", **HET), failing, env)
    check_first_failure(run_dir, job_id, env)


def test_requeue_with_one_step_per_component(per_component_cluster: dict, tmp_path: Path) -> None:
    """The same lifecycle as one step: the chief saves, the servers stop, the leader is requeued, all come back."""
    env = per_component_cluster
    config = project_config(
        tmp_path, PS_CHECKPOINTED, distributed_backend="ps", worker_count=1, parameter_server_count=1,
        compute_target={"partition": "cpu", "mem": 1000}, roles={"worker": {"partition": "gpu", "mem": 1000}},
        requeue_on=["preemption"],
    )  # fmt: skip
    run_dir, job_id = submit(config, tmp_path, env)
    epochs = run_dir / "outputs" / "epochs.jsonl"
    wait_for(lambda: epochs.exists() and len(epochs.read_text().splitlines()) >= 3, 240)
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True, env={**os.environ, **env})
    hpc("wait", str(run_dir), timeout=400, env=env)
    status = read_status(run_dir)
    assert (status["state"], status["restarts"], len(status["attempts"])) == ("COMPLETED", 1, 2), status
    assert status["attempts"][0]["requeue"].startswith("requeued after preemption"), status["attempts"][0]
    assert json.loads((run_dir / "job.json").read_text())["het_steps"] == "per_component"
    rounds = [json.loads(line) for line in epochs.read_text().splitlines()]
    assert [e["epoch"] for e in rounds if e["attempt"] == 1][-1] == 29


@pytest.fixture(scope="module")
def builtin_cluster(slurm_cluster: dict) -> Iterator[dict[str, str]]:
    """2 nodes (cpu n1, gpu n2) scheduled by sched/builtin, which takes no heterogeneous job."""
    yield from cluster_instance("builtin", "19917", HPC_TF_CLUSTER_NODES="2", HPC_TF_CLUSTER_SCHEDULER="sched/builtin")


def test_a_cluster_without_backfill_is_refused_at_submit(builtin_cluster: dict, tmp_path: Path) -> None:
    env = {**os.environ, **builtin_cluster}
    script = tmp_path / "het.sh"
    script.write_text("#!/bin/bash\n#SBATCH -p cpu -N1 -o /dev/null\n#SBATCH hetjob\n#SBATCH -p gpu -N1\nsrun true\n")
    by_hand = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True, env=env)
    # what Slurm 22.05 itself says (one-allocation jobs run there as usual)
    assert by_hand.returncode == 1 and "Requested operation not supported on this system" in by_hand.stderr
    proc = hpc("submit", str(EXAMPLE), "--runs-dir", str(tmp_path / "runs"), env=builtin_cluster)
    assert proc.returncode == 2, proc.stderr
    assert "roles" in proc.stderr and "sched/builtin" in proc.stderr and "sched/backfill" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "runs").exists()
    explained = hpc("explain", str(EXAMPLE), env=builtin_cluster)
    assert "warning:" in explained.stderr and "sched/builtin" in explained.stderr
