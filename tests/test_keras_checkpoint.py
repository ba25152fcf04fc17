"""hpc_tf.keras.Checkpointing in real processes: a save torn by SIGKILL, a save on request, a save that does not load.

Each run logs, at the start of every epoch it trains, the epoch and a digest of the model's and optimizer's variables:
a resumed run must start from exactly the state of the save it restored (5 TensorFlow processes, ~30 s)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.tf

REPO = Path(__file__).resolve().parent.parent

SCRIPT = """
import hashlib, os, signal
import numpy as np
import tensorflow as tf
from hpc_tf.keras import Checkpointing

TEAR = int(os.environ.get("TEST_TEAR_AT_EPOCH", "-1"))
REQUEST_AT = os.environ.get("TEST_REQUEST_AT", "")  # "epoch:batch": create the request file there


def digest(model):
    variables = [*model.weights, *model.optimizer.variables]
    return hashlib.sha256(b"".join(np.asarray(v).tobytes() for v in variables)).hexdigest()[:16]


def tear_the_next_weights_file():
    # The next .weights.h5 written kills the process once two of its datasets have reached the file.
    import h5py

    setitem, written = h5py.Group.__setitem__, []

    def torn(group, name, value):
        setitem(group, name, value)
        written.append(name)
        if len(written) == 2:
            group.file.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    h5py.Group.__setitem__ = torn


class Hooks(tf.keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        with open("epochs.log", "a") as f:
            f.write(f"{epoch} {digest(self.model)}\\n")
        if epoch == TEAR:  # the only weights written in this epoch: its end-of-epoch save
            tear_the_next_weights_file()

    def on_train_batch_end(self, batch, logs=None):
        if REQUEST_AT == f"{self.epoch}:{batch}":
            with open("epochs.log", "a") as f:
                f.write(f"request {digest(self.model)}\\n")
            open(os.environ["HPC_TF_CHECKPOINT_REQUEST"], "w").close()


tf.keras.utils.set_random_seed(0)
x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
y = (x.sum(axis=1) > 0).astype("float32")
model = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="adam", loss="binary_crossentropy")
epochs = int(os.environ["TEST_EPOCHS"])
model.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0, callbacks=[Hooks(), Checkpointing()])
"""


def train(tmp_path: Path, epochs: int, **env: str) -> subprocess.CompletedProcess[str]:
    """One run of the script in tmp_path, checkpointing into tmp_path/ckpt."""
    script = tmp_path / "train.py"
    if not script.exists():
        script.write_text(textwrap.dedent(SCRIPT))
    base = {k: v for k, v in os.environ.items() if not k.startswith("HPC_TF_")}
    base |= {"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    base |= {"HPC_TF_CHECKPOINT_DIR": str(tmp_path / "ckpt"), "TEST_EPOCHS": str(epochs), **env}
    return subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=base, capture_output=True, text=True, timeout=300
    )


def log(tmp_path: Path) -> list[tuple[str, str]]:
    """(epoch or "request", digest of the variables) in the order the runs logged them."""
    lines = (tmp_path / "epochs.log").read_text().splitlines()
    return [(what, digest) for what, digest in (line.split() for line in lines)]


def epochs(tmp_path: Path) -> list[int]:
    return [int(e) for e, _ in log(tmp_path) if e != "request"]


def starts(tmp_path: Path, epoch: int) -> list[str]:
    """The digests of the variables at each start of that epoch, oldest first."""
    return [d for e, d in log(tmp_path) if e == str(epoch)]


def keras_dir(tmp_path: Path) -> dict[str, dict | None]:
    """Each entry of the save folder: its metadata when it has some."""
    root = tmp_path / "ckpt" / "keras"
    meta = {p.name: p / "training_metadata.json" for p in root.iterdir()}
    return {name: json.loads(m.read_text()) if m.exists() else None for name, m in sorted(meta.items())}


def progress(tmp_path: Path) -> int:
    return json.loads((tmp_path / "ckpt" / ".hpc_tf-progress").read_text())["step"]


def test_a_save_killed_midway_is_never_loaded_and_an_unloadable_one_falls_back(tmp_path: Path) -> None:
    torn = train(tmp_path, 4, TEST_TEAR_AT_EPOCH="2")
    assert torn.returncode == -9, torn.stderr
    assert epochs(tmp_path) == [0, 1, 2]
    assert keras_dir(tmp_path) == {
        ".partial-save-000002": None,  # the torn save: weights half written, no metadata
        "save-000000": {"epoch": 1, "batch": 0},
        "save-000001": {"epoch": 2, "batch": 0},
    }
    assert (tmp_path / "ckpt" / "keras" / ".partial-save-000002" / "model.weights.h5").stat().st_size > 0
    assert progress(tmp_path) == 2_000_000  # reported only once published: not the torn save's 3_000_000

    resumed = train(tmp_path, 4)
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stderr and "hpc_tf:" not in resumed.stderr, resumed.stderr
    assert epochs(tmp_path) == [0, 1, 2, 2, 3]
    assert len(set(starts(tmp_path, 2))) == 1  # epoch 1's save restored exactly (weights and optimizer)
    assert keras_dir(tmp_path) == {"save-000002": {"epoch": 3, "batch": 0}, "save-000003": {"epoch": 4, "batch": 0}}
    assert progress(tmp_path) == 4_000_000

    newest = tmp_path / "ckpt" / "keras" / "save-000003" / "model.weights.h5"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # published, then damaged on disk
    fallback = train(tmp_path, 5)
    assert fallback.returncode == 0, fallback.stderr
    warnings = [line for line in fallback.stderr.splitlines() if line.startswith("hpc_tf:")]
    assert len(warnings) == 1 and "save-000003" in warnings[0] and "Traceback" not in fallback.stderr, fallback.stderr
    assert epochs(tmp_path) == [0, 1, 2, 2, 3, 3, 4]
    assert len(set(starts(tmp_path, 3))) == 1  # the previous save (epoch 2's) restored exactly
    assert max(epochs(tmp_path).count(e) for e in range(5)) <= 2
    assert keras_dir(tmp_path) == {"save-000003": {"epoch": 4, "batch": 0}, "save-000004": {"epoch": 5, "batch": 0}}


def test_a_request_saves_mid_epoch_exits_75_and_the_next_run_resumes_at_that_epoch(tmp_path: Path) -> None:
    request = tmp_path / "request"
    stopped = train(tmp_path, 3, TEST_REQUEST_AT="1:2", HPC_TF_CHECKPOINT_REQUEST=str(request))
    assert stopped.returncode == 75, stopped.stderr
    assert epochs(tmp_path) == [0, 1]
    assert keras_dir(tmp_path) == {"save-000000": {"epoch": 1, "batch": 0}, "save-000001": {"epoch": 1, "batch": 3}}
    assert progress(tmp_path) == 1_000_003

    request.unlink()
    resumed = train(tmp_path, 3, HPC_TF_CHECKPOINT_REQUEST=str(request))
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stderr, resumed.stderr
    assert epochs(tmp_path) == [0, 1, 1, 2]
    saved_at_request = [d for e, d in log(tmp_path) if e == "request"]
    assert starts(tmp_path, 1)[1:] == saved_at_request  # resumed from the weights of batch 3, not epoch 0's end


def test_a_request_at_an_epochs_last_batch_lets_the_epoch_end_and_resumes_at_the_next(tmp_path: Path) -> None:
    """The epoch is whole: its end runs (metrics, the epoch's save), then the script exits 75; nothing is redone."""
    request = tmp_path / "request"
    stopped = train(tmp_path, 3, TEST_REQUEST_AT="1:7", HPC_TF_CHECKPOINT_REQUEST=str(request))  # 8 batches an epoch
    assert stopped.returncode == 75, stopped.stderr
    assert keras_dir(tmp_path) == {"save-000000": {"epoch": 1, "batch": 0}, "save-000001": {"epoch": 2, "batch": 0}}
    assert progress(tmp_path) == 2_000_000
    request.unlink()
    resumed = train(tmp_path, 3, HPC_TF_CHECKPOINT_REQUEST=str(request))
    assert resumed.returncode == 0, resumed.stderr
    assert epochs(tmp_path) == [0, 1, 2]  # epoch 1 is not trained again


@pytest.mark.parametrize("legacy", ["0", "1"])
def test_the_runs_checkpoint_every_is_the_default_save_freq(tmp_path: Path, legacy: str) -> None:
    """checkpoint_every reaches Checkpointing through HPC_TF_CHECKPOINT_EVERY, under Keras 3 and tf-keras."""
    code = "from hpc_tf.keras import Checkpointing; print(type(Checkpointing()).__name__, Checkpointing().save_freq)"
    env = {
        **os.environ,
        "HPC_TF_CHECKPOINT_EVERY": "7",
        "HPC_TF_CHECKPOINT_DIR": str(tmp_path),
        "TF_USE_LEGACY_KERAS": legacy,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": str(REPO),
    }
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [("LegacyCheckpointing" if legacy == "1" else "_Keras3Checkpointing"), "7"]
