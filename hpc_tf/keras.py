"""A Keras callback that records epoch (and optionally batch) metrics with hpc_tf.log.

    from hpc_tf.keras import MetricsLogger
    model.fit(x, y, epochs=5, callbacks=[MetricsLogger()])

Imports TensorFlow: use it in training scripts, never on the submit side.
"""

from __future__ import annotations

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


class Checkpointing(tf.keras.callbacks.BackupAndRestore):
    """Keras's BackupAndRestore in the run's checkpoint folder (`HPC_TF_CHECKPOINT_DIR/keras`), kept across attempts,
    two deep (a save torn by a kill falls back to the previous one). When Slurm's warning comes (`requeue_on`), it
    saves at the batch it is at and ends the script with `hpc_tf.checkpoint.REQUEUE_ME`; the next attempt resumes at
    that epoch (the partial epoch is redone, never skipped). Single worker, Keras 3 (issue 11, work in progress)."""

    def __init__(self, save_freq: str | int = "epoch") -> None:
        from . import checkpoint

        super().__init__(
            backup_dir=str(checkpoint.directory() / "keras"),
            save_freq=save_freq,
            double_checkpoint=True,
            delete_checkpoint=False,
        )

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        from . import checkpoint

        super().on_train_batch_end(batch, logs)
        if checkpoint.requested():
            self._save_model()
            checkpoint.saved(self._current_epoch * 1_000_000 + batch + 1)
            raise SystemExit(checkpoint.REQUEUE_ME)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        from . import checkpoint

        super().on_epoch_end(epoch, logs)
        if self.save_freq == "epoch":
            checkpoint.saved(self._current_epoch * 1_000_000)
