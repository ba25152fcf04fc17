"""Issue 11 on the real dev cluster, the faults: a preemption by a `high` partition job, a node taken down, an
operator's `scontrol requeue`, and a sweep trial requeued alone. Each one is made for real (Slurm preempts, the node
goes DOWN, Slurm requeues); the run resumes from its checkpoint in the same run directory, and status.json says what
happened to each attempt."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CLUSTER, hpc, make_project, read_status, wait_for, write_config

pytestmark = pytest.mark.slurm

# Saves after every step (a preemption or a node failure may come without notice), and on a request at once.
PERIODIC = """
import json, os, sys, time
import hpc_tf, hpc_tf.checkpoint as ckpt
state = ckpt.directory() / "state.json"
step = json.loads(state.read_text())["step"] if state.exists() else 0
start = step
steps = int(os.environ.get("STEPS", "60"))
while step < steps:
    time.sleep(0.25)
    step += 1
    hpc_tf.log("step", step)
    tmp = state.with_suffix(".tmp")
    tmp.write_text(json.dumps({"step": step}))
    os.replace(tmp, state)
    ckpt.saved(step)
    if ckpt.requested():
        ckpt.exit_for_requeue()
os.makedirs("outputs", exist_ok=True)
with open("outputs/done.json", "w") as f:
    json.dump({"resumed_from": start, "restart": ckpt.restart_count(), "node": os.uname().nodename}, f)
"""


def submit(tmp_path: Path, **keys: object) -> tuple[Path, str]:
    project = make_project(tmp_path / "proj", PERIODIC)
    config = write_config(
        tmp_path / "c.yaml", experiment="rqf", source_directory=str(project), entry_script="train.py", **keys
    )
    proc = hpc("submit", str(config), "--runs-dir", str(tmp_path / "runs"), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    return Path(info["run_dir"]), str(info["job_id"])


def steps_logged(run_dir: Path) -> int:
    path = run_dir / "metrics" / "rank-0.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def cluster(verb: str, *args: str) -> None:
    proc = subprocess.run([str(CLUSTER), verb, *args], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr


def scontrol_job(job_id: str) -> str:
    return subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout


def finished(run_dir: Path, timeout: float = 240) -> dict:
    proc = hpc("wait", str(run_dir), timeout=timeout)
    status = read_status(run_dir)
    assert status["final"], (status, proc.stderr)
    return status


def test_a_job_preempted_by_a_high_partition_job_saves_and_resumes_after_it(slurm: dict, tmp_path: Path) -> None:
    """PreemptMode=REQUEUE + preempt_send_user_signal: Slurm sends the warning at preemption (PreemptTime set, long
    before the limit), the script saves, hpc_tf requeues it; it runs again once the preemptor has its node."""
    run_dir, job_id = submit(tmp_path, requeue_on=["preemption"], compute_target={"time": "00:10:00"})
    wait_for(lambda: steps_logged(run_dir) >= 8, 120)
    node = read_status(run_dir)["nodes"][0]
    out = tmp_path / "high.out"
    high = subprocess.run(
        ["sbatch", "--parsable", "-p", "high", "-w", node, "-c", "2", "-t", "1", "-o", str(out), "--wrap",
         "date +%s.%N; sleep 5; echo preemptor done"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    status = finished(run_dir)
    assert (status["state"], status["restarts"]) == ("COMPLETED", 1), status
    first, second = status["attempts"]
    assert first["cause"] == "preemption" and first["requeue"] == "requeued after preemption (restart 1)", first
    assert first["checkpoint_step"] >= 8 and second["n"] == 1 and second["end"] is None
    assert status["restarts_by_cause"] == {"preemption": 1}
    assert "preemptor done" in out.read_text(), f"high job {high} did not run"
    assert "Restarts=1" in scontrol_job(job_id)  # one warning, one requeue: nobody else requeued it again
    done = json.loads((run_dir / "outputs" / "done.json").read_text())
    assert done["restart"] == 1 and done["resumed_from"] == first["checkpoint_step"]  # no step lost, none redone


def test_a_node_taken_down_under_the_job_requeues_it_on_a_healthy_node(slurm: dict, tmp_path: Path) -> None:
    run_dir, job_id = submit(tmp_path, requeue_on=["node_failure"])
    assert "Requeue=1" in scontrol_job(job_id) and "--signal" not in (run_dir / "job.sh").read_text()
    wait_for(lambda: steps_logged(run_dir) >= 8, 120)
    victim = read_status(run_dir)["nodes"][0]
    cluster("node-down", victim)
    try:
        status = finished(run_dir)
    finally:
        cluster("node-up", victim)
    assert (status["state"], status["restarts"]) == ("COMPLETED", 1), status
    first, second = status["attempts"]
    assert first["cause"] == "node_failure" and "requeued after node_failure" in first["requeue"], first
    assert first["nodes"] == [victim] and victim not in second["nodes"] and first["end"] is None  # not known
    assert status["restarts_by_cause"] == {"node_failure": 1}
    assert "restarts      1 (node_failure 1)" in hpc("status", str(run_dir)).stdout
    done = json.loads((run_dir / "outputs" / "done.json").read_text())
    assert done["restart"] == 1 and done["resumed_from"] >= 8 and done["node"] != victim


def test_a_restart_for_a_cause_not_in_requeue_on_is_refused_with_the_reason(slurm: dict, tmp_path: Path) -> None:
    """`--requeue` (requeue_on: [timeout]) lets Slurm restart the job after a node failure; hpc_tf's runtime refuses
    to run the script again: the run ends FAILED and says why (never silently rerun)."""
    run_dir, job_id = submit(tmp_path, requeue_on=["timeout"])
    wait_for(lambda: steps_logged(run_dir) >= 4, 120)
    victim = read_status(run_dir)["nodes"][0]
    cluster("node-down", victim)
    try:
        status = finished(run_dir)
    finally:
        cluster("node-up", victim)
    assert (status["state"], status["exit_code"], status["restarts"]) == ("FAILED", 75, 0), status
    reason = "node_failure is not in requeue_on (timeout)"
    assert status["message"] == f"not restarted: {reason}"
    assert [(a["cause"], a["requeue"]) for a in status["attempts"]] == [("node_failure", reason)]
    assert not (run_dir / "outputs" / "done.json").exists()
    assert f"hpc_tf: not restarted: {reason}" in (run_dir / "logs" / "rank-0.err").read_text()


def test_an_operator_requeue_resumes_and_without_requeue_on_slurm_refuses_it(slurm: dict, tmp_path: Path) -> None:
    run_dir, job_id = submit(tmp_path / "a", requeue_on=["preemption"])
    plain_dir, plain_id = submit(tmp_path / "b", environment_variables={"STEPS": "40"})
    assert "Requeue=0" in scontrol_job(plain_id) and "#SBATCH --no-requeue" in (plain_dir / "job.sh").read_text()
    wait_for(lambda: steps_logged(run_dir) >= 8 and steps_logged(plain_dir) >= 4, 120)
    subprocess.run(["scontrol", "requeue", job_id], check=True)
    refused = subprocess.run(["scontrol", "requeue", plain_id], capture_output=True, text=True)
    assert refused.returncode != 0, refused
    status = finished(run_dir)
    assert (status["state"], status["restarts"]) == ("COMPLETED", 1), status
    assert status["attempts"][0]["cause"] == "preemption"  # an unannounced requeue: counted as a preemption
    done = json.loads((run_dir / "outputs" / "done.json").read_text())
    assert done["restart"] == 1 and done["resumed_from"] >= 8
    plain = finished(plain_dir)
    assert (plain["state"], plain["restarts"], len(plain["attempts"])) == ("COMPLETED", 0, 1), plain


def test_a_sweep_trial_is_requeued_alone(slurm: dict, tmp_path: Path) -> None:
    """Lightning #15022: `scontrol requeue $SLURM_JOB_ID` inside an array requeued the wrong job. The signal goes to
    array task 1 only; only trial 1 takes a second attempt, with its hyperparameters, in its own run directory."""
    project = make_project(tmp_path / "proj", PERIODIC)
    config = write_config(
        tmp_path / "sweep.yaml",
        experiment="rqs",
        source_directory=str(project),
        entry_script="train.py",
        requeue_on=["preemption"],
        environment_variables={"STEPS": "40"},
        script_params={"--lr": 1},
        hyperdrive={
            "primary_metric_name": "step",
            "primary_metric_goal": "maximize",
            "hyperparameter_sampling": {"type": "grid", "parameter_space": {"--lr": "choice(1, 2, 3)"}},
            "max_total_runs": 3,
            "max_concurrent_runs": 3,
        },
    )
    proc = hpc("submit", str(config), "--runs-dir", str(tmp_path / "runs"), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    array = info["array_job_ids"][0]
    trials = [tmp_path / "runs" / "rqs" / f"{info['sweep_id']}_{i}" for i in range(3)]
    wait_for(lambda: all(steps_logged(t) >= 6 for t in trials), 180)
    subprocess.run(["scancel", "--signal=USR2", f"{array}_1"], check=True)
    waited = hpc("sweep", "wait", info["sweep_id"], "--runs-dir", str(tmp_path / "runs"), "--json", timeout=300)
    statuses = [read_status(t) for t in trials]
    assert [s["state"] for s in statuses] == ["COMPLETED"] * 3, (statuses, waited.stderr)
    assert [s["restarts"] for s in statuses] == [0, 1, 0]
    assert statuses[1]["attempts"][0]["cause"] == "preemption" and statuses[1]["job_id"] == f"{array}_1"
    assert [int(f"Restarts={n}" in scontrol_job(f"{array}_{i}")) for i, n in enumerate([0, 1, 0])] == [1, 1, 1]
    argv = json.loads((trials[1] / "job.json").read_text())["command"]
    assert argv[-2:] == ["--lr", "2"]
    done = json.loads((trials[1] / "outputs" / "done.json").read_text())
    assert done["restart"] == 1 and done["resumed_from"] >= 6


NEVER_SAVES = """
import os, time
import hpc_tf, hpc_tf.checkpoint as ckpt
step = 0
while True:
    time.sleep(0.25)
    step += 1
    hpc_tf.log("step", step)
    if ckpt.requested():
        ckpt.exit_for_requeue()  # asks for a requeue without having saved anything
"""


def test_attempts_that_make_no_progress_stop_the_loop(slurm: dict, tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", NEVER_SAVES)
    config = write_config(
        tmp_path / "c.yaml", experiment="rqn", source_directory=str(project), entry_script="train.py",
        requeue_on=["preemption"], max_restarts=10,
    )  # fmt: skip
    proc = hpc("submit", str(config), "--runs-dir", str(tmp_path / "runs"), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    run_dir, job_id = Path(info["run_dir"]), str(info["job_id"])
    for attempt in range(3):
        wait_for(lambda n=attempt: read_status(run_dir)["restarts"] == n and steps_logged(run_dir) >= 4 * (n + 1), 120)
        subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    status = finished(run_dir)
    reason = "no progress: the last 2 attempts ended without a newer checkpoint"
    assert (status["state"], status["exit_code"], status["message"]) == ("FAILED", 75, f"not requeued: {reason}")
    assert [(a["cause"], a["checkpoint_step"]) for a in status["attempts"]] == [("preemption", None)] * 3
    assert status["attempts"][-1]["requeue"] == reason and status["restarts"] == 2


TORN = """
import json, os, time
import numpy as np
import tensorflow as tf
import hpc_tf.checkpoint as ckpt
from hpc_tf.keras import Checkpointing

def slow_the_next_weights_file():
    # the save on request writes two datasets, then hangs: Slurm kills the job in the middle of it
    import h5py
    setitem, written = h5py.Group.__setitem__, []
    def slow(group, name, value):
        setitem(group, name, value)
        written.append(name)
        if len(written) == 2:
            group.file.flush()
            open("outputs/mid-save", "w").close()
            time.sleep(300)
    h5py.Group.__setitem__ = slow

class Hooks(tf.keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        with open("outputs/epochs.jsonl", "a") as f:
            f.write(json.dumps({"attempt": ckpt.restart_count(), "epoch": epoch}) + "\\n")
    def on_train_batch_end(self, batch, logs=None):
        time.sleep(0.05)
        if ckpt.restart_count() == 0 and ckpt.requested() and not hasattr(self, "armed"):
            self.armed = slow_the_next_weights_file()

os.makedirs("outputs", exist_ok=True)
tf.keras.utils.set_random_seed(0)
x = np.random.default_rng(0).normal(size=(160, 4)).astype("float32")
y = (x.sum(axis=1) > 0).astype("float32")
model = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="adam", loss="binary_crossentropy")
model.fit(x, y, batch_size=8, epochs=12, verbose=0, callbacks=[Hooks(), Checkpointing()])
open("outputs/done", "w").close()
"""


@pytest.mark.tf
def test_a_save_killed_half_way_is_never_restored(slurm: dict, tmp_path: Path) -> None:
    """The warning's save hangs half-written; an operator's `scontrol requeue` kills the job in the middle of it. The
    next attempt restores the newest *complete* save (the torn one is ignored) and finishes."""
    project = make_project(tmp_path / "proj", TORN)
    config = write_config(
        tmp_path / "c.yaml", experiment="rqt", source_directory=str(project), entry_script="train.py",
        requeue_on=["preemption"],
    )  # fmt: skip
    proc = hpc("submit", str(config), "--runs-dir", str(tmp_path / "runs"), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    run_dir, job_id = Path(info["run_dir"]), str(info["job_id"])
    epochs = run_dir / "outputs" / "epochs.jsonl"
    wait_for(lambda: epochs.exists() and len(epochs.read_text().splitlines()) >= 4, 180)
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    wait_for((run_dir / "outputs" / "mid-save").exists, 60)
    keras = run_dir / "checkpoints" / "keras"
    complete = sorted(p.name for p in keras.iterdir() if p.name.startswith("save-"))
    newest = json.loads((keras / complete[-1] / "training_metadata.json").read_text())
    assert [p.name for p in keras.iterdir() if p.name.startswith(".partial-")], "no save in progress"
    subprocess.run(["scontrol", "requeue", job_id], check=True)  # kills the job mid-save
    status = finished(run_dir)
    assert (status["state"], status["restarts"]) == ("COMPLETED", 1), status
    assert status["attempts"][0]["cause"] == "preemption"  # the request it was handling when killed
    resumed = [json.loads(line) for line in epochs.read_text().splitlines() if '"attempt": 1' in line]
    assert resumed[0]["epoch"] == newest["epoch"] and resumed[-1]["epoch"] == 11
    assert "Traceback" not in (run_dir / "logs" / "rank-0.err").read_text()
    assert (run_dir / "outputs" / "done").exists()


# Saves for SAVE_SECONDS once asked (a real save takes a while): the window in which the controller is stopped.
SLOW_SAVE = """
import json, os, time
import hpc_tf.checkpoint as ckpt
state = ckpt.directory() / "state.json"
step = json.loads(state.read_text())["step"] if state.exists() else 0
while step < 40:
    time.sleep(0.25)
    step += 1
    state.write_text(json.dumps({"step": step}))
    ckpt.saved(step)
    if ckpt.requested():
        time.sleep(float(os.environ["SAVE_SECONDS"]))
        ckpt.exit_for_requeue()
os.makedirs("outputs", exist_ok=True)
with open("outputs/done.json", "w") as f:
    json.dump({"restart": ckpt.restart_count()}, f)
"""


def test_a_requeue_asked_while_the_controller_is_down_is_never_recorded_unless_slurm_took_it(
    slurm: dict, tmp_path: Path
) -> None:
    """The controller is stopped for real between the warning and the script's exit. Rank 0 asks `scontrol requeue`
    again and again within the warning's lead time: the run with 120 s of lead is requeued once the controller is
    back and completes in a second attempt; the run with 30 s of lead ends FAILED saying Slurm did not take the
    request. Neither is ever REQUEUED on a request Slurm did not take."""
    runs = {}
    for name, lead in (("long", 120), ("short", 30)):
        project = make_project(tmp_path / name / "proj", SLOW_SAVE)
        config = write_config(
            tmp_path / name / "c.yaml",
            experiment=f"rqdown-{name}",
            source_directory=str(project),
            entry_script="train.py",
            requeue_on=["preemption"],
            checkpoint_lead_seconds=lead,
            max_run_duration_seconds=900,
            environment_variables={"SAVE_SECONDS": "6"},
        )
        proc = hpc("submit", str(config), "--runs-dir", str(tmp_path / "runs"), "--json")
        assert proc.returncode == 0, proc.stderr
        info = json.loads(proc.stdout)
        runs[name] = (Path(info["run_dir"]), str(info["job_id"]))
    wait_for(lambda: all(steps_logged_state(d) >= 4 for d, _ in runs.values()), 120)
    for _, job_id in runs.values():  # the warning, as Slurm sends it (rank 0's runtime asks scontrol for the cause)
        subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    wait_for(lambda: all((d / "tasks" / "checkpoint-request-0").exists() for d, _ in runs.values()), 30)
    cluster("stop-controller")
    try:
        short_dir = runs["short"][0]
        wait_for(lambda: "did not take" in (read_status(short_dir).get("message") or ""), 90)
        assert read_status(runs["long"][0])["state"] != "REQUEUED"  # still asking
        for d, _ in runs.values():
            assert read_status(d)["state"] != "REQUEUED"
    finally:
        cluster("start-controller")
    long_status = finished(runs["long"][0], timeout=300)
    assert (long_status["state"], long_status["restarts"], len(long_status["attempts"])) == ("COMPLETED", 1, 2)
    assert long_status["attempts"][0]["requeue"].startswith("requeued after preemption"), long_status["attempts"]
    assert json.loads((runs["long"][0] / "outputs" / "done.json").read_text())["restart"] == 1
    short = finished(short_dir, timeout=300)
    assert (short["state"], short["exit_code"], short["restarts"]) == ("FAILED", 75, 0), short
    assert short["attempts"][0]["requeue"].startswith("Slurm did not take the requeue"), short["attempts"]
    assert "scontrol" in short["message"] and short["message"].startswith("not requeued: "), short["message"]


def steps_logged_state(run_dir: Path) -> int:
    """The step SLOW_SAVE has saved (0 before its first)."""
    state = run_dir / "checkpoints" / "state.json"
    try:
        return int(json.loads(state.read_text())["step"])
    except (OSError, ValueError, KeyError):
        return 0
