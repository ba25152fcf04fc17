"""Issue 11 for distributed runs on the real dev cluster, with real TensorFlow, Horovod and Open MPI: Slurm's warning
(`scancel --signal=USR2`, as Slurm sends it to every step's tasks) to a Horovod 2-node run makes both ranks stop after
the same batch, rank 0 save, and the run resume from that save; to a parameter-server run, the chief saves, the
servers stop cleanly, and every task comes back with a fresh TF_CONFIG."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import hpc, make_project, read_status, wait_for, write_config

pytestmark = [pytest.mark.slurm, pytest.mark.tf]

HOROVOD = """
import json, os, time
import numpy as np
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import horovod.tensorflow.keras as hvd
import tensorflow as tf
import hpc_tf.checkpoint as ckpt
from hpc_tf.keras import Checkpointing

hvd.init()
rng = np.random.default_rng(hvd.rank())
x = rng.random((640, 8)).astype("float32")
y = x.sum(axis=1, keepdims=True)
model = tf.keras.Sequential([tf.keras.Input(shape=(8,)), tf.keras.layers.Dense(16, activation="relu"),
                             tf.keras.layers.Dense(1)])
model.compile(optimizer=hvd.DistributedOptimizer(tf.keras.optimizers.SGD(0.01)), loss="mse")
steps = open(os.path.join(os.environ["HPC_TF_OUTPUTS_DIR"], "steps.jsonl"), "a")

class Record(tf.keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
    def on_train_batch_end(self, batch, logs=None):
        time.sleep(0.05)
        steps.write(json.dumps({"attempt": ckpt.restart_count(), "epoch": self.epoch, "batch": batch}) + "\\n")
        steps.flush()

model.fit(x, y, batch_size=32, epochs=int(os.environ.get("EPOCHS", "12")), verbose=0,
          callbacks=[hvd.callbacks.BroadcastGlobalVariablesCallback(0), Record(), Checkpointing()])
if hvd.rank() == 0:
    with open("outputs/done.json", "w") as f:
        json.dump({"restart": ckpt.restart_count(), "size": hvd.size()}, f)
"""

PS = """
import json, os, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf
import hpc_tf.checkpoint as ckpt
from hpc_tf.keras import Checkpointing

resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
strategy = tf.distribute.ParameterServerStrategy(resolver)
x = np.random.default_rng(0).random((512, 8)).astype("float32")
y = x.sum(axis=1, keepdims=True)

def dataset_fn(ctx):
    return tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(32)

with strategy.scope():
    model = tf.keras.Sequential([tf.keras.Input(shape=(8,)), tf.keras.layers.Dense(1)])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.01), loss="mse")

class Record(tf.keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        time.sleep(0.5)
        with open("outputs/epochs.jsonl", "a") as f:
            f.write(json.dumps({"attempt": ckpt.restart_count(), "epoch": epoch,
                                "cluster": json.loads(os.environ["TF_CONFIG"])["cluster"]}) + "\\n")

os.makedirs("outputs", exist_ok=True)
model.fit(tf.keras.utils.experimental.DatasetCreator(dataset_fn), epochs=int(os.environ.get("EPOCHS", "30")),
          steps_per_epoch=5, verbose=0, callbacks=[Record(), Checkpointing()])
with open("outputs/done.json", "w") as f:
    json.dump({"restart": ckpt.restart_count()}, f)
"""


def submit(tmp_path: Path, script: str, **keys: object) -> tuple[Path, str]:
    project = make_project(tmp_path / "proj", script)
    config = write_config(
        tmp_path / "c.yaml", experiment="rqd", source_directory=str(project), entry_script="train.py", **keys
    )
    proc = hpc("submit", str(config), "--runs-dir", str(tmp_path / "runs"), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    return Path(info["run_dir"]), str(info["job_id"])


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("launcher", ["srun", "mpirun"])
def test_horovod_ranks_stop_after_the_same_batch_and_resume_from_rank_0s_save(
    slurm: dict, tmp_path: Path, launcher: str
) -> None:
    run_dir, job_id = submit(
        tmp_path, HOROVOD, distributed_backend="mpi", node_count=2, launcher=launcher, requeue_on=["preemption"]
    )
    rank_steps = [run_dir / "outputs" / "steps.jsonl", run_dir / "outputs" / "rank-1" / "steps.jsonl"]
    wait_for(lambda: all(len(lines(p)) >= 50 for p in rank_steps), 240)
    assert f"#SBATCH --signal={'B:' if launcher == 'mpirun' else ''}USR2@120" in (run_dir / "job.sh").read_text()
    # as Slurm sends the warning: to the steps' tasks (srun), or to the batch shell, exec'ed into mpirun
    subprocess.run(["scancel", "--signal=USR2", *(["--batch"] if launcher == "mpirun" else []), job_id], check=True)
    proc = hpc("wait", str(run_dir), timeout=400)
    status = read_status(run_dir)
    assert (status["state"], status["restarts"]) == ("COMPLETED", 1), (status, proc.stderr)
    first = status["attempts"][0]
    assert first["cause"] == "preemption" and first["requeue"] == "requeued after preemption (restart 1)"
    per_rank = [lines(p) for p in rank_steps]
    last = [[s for s in steps if s["attempt"] == 0][-1] for steps in per_rank]
    assert last[0] == last[1], last  # both ranks stopped after the same batch
    stop_epoch, stop_batch = last[0]["epoch"], last[0]["batch"]
    assert first["checkpoint_step"] == stop_epoch * 1_000_000 + stop_batch + 1
    resumed = [[s for s in steps if s["attempt"] == 1][0] for steps in per_rank]
    assert resumed[0] == resumed[1] == {"attempt": 1, "epoch": stop_epoch, "batch": 0}  # the partial epoch is redone
    for steps in per_rank:  # every epoch ran in full once it was resumed; none more than twice
        epochs = [s["epoch"] for s in steps]
        assert sorted(set(epochs)) == list(range(12)) and all(epochs.count(e) <= 2 * 20 for e in set(epochs))
    assert json.loads((run_dir / "outputs" / "done.json").read_text()) == {"restart": 1, "size": 2}
    tasks = {t["rank"]: t for t in (json.loads(p.read_text()) for p in (run_dir / "tasks").glob("rank-*.json"))}
    assert [tasks[r]["exit_code"] for r in (0, 1)] == [0, 0]  # the last attempt's ends


def test_a_parameter_server_chief_saves_the_servers_stop_and_all_come_back(slurm: dict, tmp_path: Path) -> None:
    run_dir, job_id = submit(
        tmp_path, PS, distributed_backend="ps", node_count=3, worker_count=1, parameter_server_count=1,
        requeue_on=["preemption"],
    )  # fmt: skip
    epochs = run_dir / "outputs" / "epochs.jsonl"
    wait_for(lambda: len(lines(epochs)) >= 3, 240)
    stopped_attempt = {}

    def servers_stopped() -> bool:
        tasks = [json.loads(p.read_text()) for p in (run_dir / "tasks").glob("rank-*.json")]
        ended = {t["rank"]: t for t in tasks if t.get("end_time")}
        if len(ended) == 3 and read_status(run_dir)["attempts"][0]["end"]:  # and the chief recorded its decision
            stopped_attempt.update(ended)
            return True
        return False

    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    wait_for(servers_stopped, 120, interval=0.05)
    assert stopped_attempt[0]["exit_code"] == 75  # the chief saved and asked for the next attempt
    for rank in (1, 2):  # the ps and the worker were stopped by hpc_tf after the chief (SIGTERM, 143), before the
        assert stopped_attempt[rank]["stopped_after_chief"], stopped_attempt[rank]  # requeue: not killed by it
        assert stopped_attempt[rank]["end_time"] <= read_status(run_dir)["attempts"][0]["end"]
    proc = hpc("wait", str(run_dir), timeout=400)
    status = read_status(run_dir)
    assert (status["state"], status["restarts"]) == ("COMPLETED", 1), (status, proc.stderr)
    done = lines(epochs)
    before = [e["epoch"] for e in done if e["attempt"] == 0]
    after = [e["epoch"] for e in done if e["attempt"] == 1]
    assert after[0] == before[-1] + 1 and after[-1] == 29  # resumed at the epoch after the last saved one
    assert status["attempts"][0]["checkpoint_step"] == (before[-1] + 1) * 1_000_000
