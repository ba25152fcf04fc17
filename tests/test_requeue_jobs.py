"""Issue 11 on the real dev cluster (work in progress): Slurm's warning signal reaches hpc_tf's runtime, the script
saves and asks to be requeued, the run resumes in the same run directory; refusals say why."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import hpc, make_project, read_status, wait_for, write_config

pytestmark = pytest.mark.slurm

COUNTER = """
import json, os, time
import hpc_tf, hpc_tf.checkpoint as ckpt
state = ckpt.directory() / "state.json"
step = json.loads(state.read_text())["step"] if state.exists() else 0
start = step
while step < 40:
    time.sleep(0.25)
    step += 1
    hpc_tf.log("step", step)
    if ckpt.requested():
        state.write_text(json.dumps({"step": step}))
        ckpt.exit_for_requeue()
os.makedirs("outputs", exist_ok=True)
with open("outputs/done.json", "w") as f:
    json.dump({"resumed_from": start, "restart": ckpt.restart_count()}, f)
"""


def submit(tmp_path: Path, **keys: object) -> tuple[Path, str]:
    project = make_project(tmp_path / "proj", COUNTER)
    config = write_config(
        tmp_path / "c.yaml", experiment="rq", source_directory=str(project), entry_script="train.py", **keys
    )
    proc = hpc("submit", str(config), "--runs-dir", str(tmp_path / "runs"), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    return Path(info["run_dir"]), str(info["job_id"])


def steps_logged(run_dir: Path) -> int:
    path = run_dir / "metrics" / "rank-0.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_the_warning_signal_checkpoints_requeues_and_the_run_resumes(slurm: dict, tmp_path: Path) -> None:
    run_dir, job_id = submit(tmp_path, requeue_on=["preemption", "timeout"], compute_target={"time": "00:10:00"})
    shown = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
    assert "Requeue=1" in shown
    wait_for(lambda: steps_logged(run_dir) >= 8, 90)
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)  # to the steps, as Slurm's warning
    proc = hpc("wait", str(run_dir), "--json", timeout=240)
    status = read_status(run_dir)
    assert status["state"] == "COMPLETED" and status["restarts"] == 1, (status, proc.stderr)
    assert [a["n"] for a in status["attempts"]] == [0, 1]
    first = status["attempts"][0]
    assert first["cause"] == "preemption" and "requeued after preemption" in first["requeue"]  # long before the limit
    assert status["job_id"] == job_id  # the same job, the same run directory
    done = json.loads((run_dir / "outputs" / "done.json").read_text())
    assert done["restart"] == 1 and done["resumed_from"] >= 8
    assert (run_dir / "tasks" / "checkpoint-request-0").exists() and not (
        run_dir / "tasks" / "checkpoint-request-1"
    ).exists()


def test_a_refused_requeue_ends_the_run_with_the_reason(slurm: dict, tmp_path: Path) -> None:
    run_dir, job_id = submit(tmp_path, requeue_on=["preemption"], max_restarts=0)
    wait_for(lambda: steps_logged(run_dir) >= 4, 90)
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    hpc("wait", str(run_dir), timeout=120)
    status = read_status(run_dir)
    assert (status["state"], status["exit_code"], status["restarts"]) == ("FAILED", 75, 0), status
    assert status["message"] == "not requeued: max_restarts reached (0 of 0)"
    assert status["attempts"][0]["cause"] == "preemption"


def test_without_requeue_on_nothing_is_requeued(slurm: dict, tmp_path: Path) -> None:
    run_dir, job_id = submit(tmp_path)
    shown = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
    assert "Requeue=0" in shown
    hpc("wait", str(run_dir), timeout=120)
    assert read_status(run_dir)["state"] == "COMPLETED" and read_status(run_dir)["attempts"][0]["n"] == 0
    time.sleep(0)


REPO = Path(__file__).resolve().parent.parent


@pytest.mark.tf
@pytest.mark.timeout(1500)  # ~10 minutes alone; more when the other workers' jobs share the 2 CPUs
def test_the_example_keras_training_longer_than_its_time_limit_finishes(slurm: dict, tmp_path: Path) -> None:
    """configs/long-training.yaml as written: a 1-minute limit, ~3 minutes of training (30 epochs of ~6 s). Slurm's
    own warning 40 s (up to 60 s earlier, ~30 s later) before each limit, a save at that batch, a requeue; the run
    completes in the same run directory with the same run id, every epoch trained, none more than twice."""
    proc = hpc("submit", str(REPO / "configs" / "long-training.yaml"), "--runs-dir", str(tmp_path / "runs"), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    run_dir = Path(info["run_dir"])
    waited = hpc("wait", str(run_dir), timeout=1200)
    status = read_status(run_dir)
    assert status["state"] == "COMPLETED", (status, waited.stderr)
    assert status["run_id"] == info["run_id"] and status["job_id"] == str(info["job_id"])
    attempts = status["attempts"]
    assert len(attempts) >= 3 and [a["n"] for a in attempts] == list(range(len(attempts)))
    assert all(a["cause"] == "timeout" and a["requeue"].startswith("requeued after timeout") for a in attempts[:-1])
    assert all(a["end"] and a["checkpoint_step"] for a in attempts[:-1]) and attempts[-1]["requeue"] == ""
    assert [a["checkpoint_step"] for a in attempts[:-1]] == sorted(a["checkpoint_step"] for a in attempts[:-1])
    epochs = [
        json.loads(line)["step"]
        for line in (run_dir / "metrics" / "rank-0.jsonl").read_text().splitlines()
        if json.loads(line)["name"] == "loss"
    ]
    assert sorted(set(epochs)) == list(range(30))  # every epoch trained, the last one too
    assert max(epochs.count(e) for e in set(epochs)) <= 2  # an interrupted epoch is redone once, never more
    metrics = json.loads((run_dir / "outputs" / "metrics.json").read_text())
    assert metrics["last_epoch"] == 29 and metrics["attempts"] == len(attempts)
    assert (run_dir / "outputs" / "final.weights.h5").exists()
    out = (run_dir / "logs" / "rank-0.out").read_text()  # appended across attempts, never truncated
    assert [f"attempt {n}" in out for n in range(len(attempts))] == [True] * len(attempts)
    shown = hpc("status", str(run_dir)).stdout
    assert all(f"requeued after timeout (restart {n})" in shown for n in range(1, len(attempts)))
