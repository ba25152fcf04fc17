"""Keras callbacks: MetricsLogger (metrics with hpc_tf.log), Checkpointing (saves and resumes across attempts).

    from hpc_tf.keras import Checkpointing, MetricsLogger
    model.fit(x, y, epochs=5, callbacks=[MetricsLogger(), Checkpointing()])

Imports TensorFlow: use it in training scripts, never on the submit side.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import tensorflow as tf

from .metrics import log, record


class MetricsLogger(tf.keras.callbacks.Callback):
    """Logs every value Keras reports at the end of each epoch (step = epoch), and of each
    training batch when `batches=True` (step = global batch number, names prefixed `batch_`).

    In a sweep trial, when the sweep's early-termination policy stops the trial on the primary metric, it
    stops training cleanly (`model.stop_training`): fit returns and the script goes on to save its outputs."""

    def __init__(self, batches: bool = False) -> None:
        super().__init__()
        self.batches = batches
        self._batch = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for name, value in (logs or {}).items():
            if record(name, value, step=epoch) is not None:
                self.model.stop_training = True

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.batches:
            for name, value in (logs or {}).items():
                log(f"batch_{name}", value, step=self._batch)  # batch_ names are never a sweep's primary metric
        self._batch += 1


class _Keras3Checkpointing(tf.keras.callbacks.BackupAndRestore):
    """Keras's BackupAndRestore in the run's checkpoint folder (`HPC_TF_CHECKPOINT_DIR/keras`), kept across attempts.
    When Slurm's warning comes (`requeue_on`), it saves at the batch it is at and ends the script with
    `hpc_tf.checkpoint.REQUEUE_EXIT_CODE`; the next attempt resumes at that epoch (the partial epoch is redone,
    never skipped).
    Keras 3, one process; under tf-keras (hpc_tf's default for distributed jobs) `keras_legacy.LegacyCheckpointing`.

    Keras's own double_checkpoint copies then overwrites in place, so a kill mid-save can leave weights that do not
    load, or new weights beside old metadata. Here every save is a directory `save-NNNNNN` (weights + metadata) written
    whole under a dot-name, fsynced, then renamed: a name matching `save-N` is always complete, the listing itself is
    the pointer (no second file to keep in step), and the two newest are kept so one that does not load falls back."""

    def __init__(self, save_freq: str | int | None = None) -> None:
        """`save_freq`: "epoch" or every N batches; by default the run's `checkpoint_every`."""
        from . import checkpoint

        super().__init__(
            backup_dir=str(checkpoint.directory() / "keras"),
            save_freq=checkpoint.every() if save_freq is None else save_freq,
            delete_checkpoint=False,
        )
        self._batch = 0  # batches done in the current epoch
        self._stop_at_epoch_end = False  # asked at an epoch's last batch: the epoch ends whole, then the script

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._current_epoch, self._batch = epoch, 0  # Keras sets it only at epoch end: a resumed run's first would be 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._batch = 0  # the epoch is whole: its save resumes at the next one
        super().on_epoch_end(epoch, logs)
        if self._stop_at_epoch_end:
            if self.save_freq != "epoch":
                self._save_model()
            self.model.stop_training = True

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        from . import checkpoint

        self._batch = batch + 1
        if checkpoint.requested() and not self._stop_at_epoch_end:
            if self._batch == self.params.get("steps"):  # the epoch's last batch: let it end (its metrics, its save)
                self._stop_at_epoch_end = True
                return
            self._save_model()
            raise SystemExit(checkpoint.REQUEUE_EXIT_CODE)
        super().on_train_batch_end(batch, logs)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        from . import checkpoint

        super().on_train_end(logs)
        if self._stop_at_epoch_end:
            raise SystemExit(checkpoint.REQUEUE_EXIT_CODE)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Restore the newest save that loads; warn about (and set aside) newer ones that do not; none: from scratch."""
        if not self.model.built:
            raise ValueError("Checkpointing needs a built model before fit()")
        saves = _saves(Path(self.backup_dir))
        for n, save in enumerate(saves):
            try:
                self._load(save)
            except Exception as e:
                if n + 1 == len(saves):
                    raise
                why = " ".join(f"{type(e).__name__}: {e}".split())[:300]
                print(f"hpc_tf: checkpoint {save} does not load ({why}); trying {saves[n + 1].name}", file=sys.stderr)
                continue
            for bad in saves[:n]:  # out of the two kept: the next save's cleanup removes it
                bad.rename(bad.with_name(f".unloadable-{bad.name}"))
            return

    def _load(self, save: Path) -> None:
        epoch = int(json.loads((save / METADATA).read_text())["epoch"])
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)  # its variables must exist to be loaded
        self.model.load_weights(str(save / WEIGHTS))
        self.model._initial_epoch = self._current_epoch = epoch

    def _save_model(self) -> None:
        """Write a complete save beside the others, publish it by a rename, keep two; then report the progress."""
        from . import checkpoint

        root = Path(self.backup_dir)
        root.mkdir(parents=True, exist_ok=True)
        for leftover in root.glob(".*"):  # a killed save's partial directory, or a set-aside one
            shutil.rmtree(leftover, ignore_errors=True)
        saves = _saves(root)
        name = f"save-{int(saves[0].name[5:]) + 1 if saves else 0:06d}"
        tmp = root / f".partial-{name}"
        tmp.mkdir()
        self.model.save_weights(str(tmp / WEIGHTS))
        (tmp / METADATA).write_text(json.dumps({"epoch": self._current_epoch, "batch": self._batch}))
        for path in (tmp / WEIGHTS, tmp / METADATA, tmp):
            _fsync(path)
        os.rename(tmp, root / name)
        _fsync(root)
        for old in saves[1:]:  # set aside first: a kill mid-delete leaves no half save under a save- name
            trash = old.with_name(f".old-{old.name}")
            old.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        checkpoint.saved(self._current_epoch * 1_000_000 + self._batch)


WEIGHTS, METADATA = "model.weights.h5", "training_metadata.json"
LEGACY = tf.keras.__name__.startswith("tf_keras")  # TF_USE_LEGACY_KERAS=1: hpc_tf's default for distributed jobs

Checkpointing: type = _Keras3Checkpointing
if LEGACY:  # tf-keras: its BackupAndRestore's own atomic saves, plus Horovod's agreement and parameter servers
    from ._keras_legacy import LegacyCheckpointing

    Checkpointing = LegacyCheckpointing


def _saves(root: Path) -> list[Path]:
    """The published saves, newest first (dot-names are partial or set aside: never loaded)."""
    found = [p for p in root.glob("save-*") if p.name[5:].isdigit() and p.is_dir()] if root.is_dir() else []
    return sorted(found, key=lambda p: int(p.name[5:]), reverse=True)


def _fsync(path: Path) -> None:
    """Flush a file's bytes, or a directory's entries, to disk before anything points at them."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        if not path.is_dir():  # some file systems refuse a directory's fsync: their renames are durable anyway
            raise
    finally:
        os.close(fd)
