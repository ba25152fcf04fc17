"""A Keras callback that records epoch (and optionally batch) metrics with hpc_tf.log.

    from hpc_tf.keras import MetricsLogger
    model.fit(x, y, epochs=5, callbacks=[MetricsLogger()])

Imports TensorFlow: use it in training scripts, never on the submit side.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from .metrics import log


class MetricsLogger(tf.keras.callbacks.Callback):
    """Logs every value Keras reports at the end of each epoch (step = epoch), and of each
    training batch when `batches=True` (step = global batch number, names prefixed `batch_`)."""

    def __init__(self, batches: bool = False) -> None:
        super().__init__()
        self.batches = batches
        self._batch = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for name, value in (logs or {}).items():
            log(name, value, step=epoch)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.batches:
            for name, value in (logs or {}).items():
                log(f"batch_{name}", value, step=self._batch)
        self._batch += 1
