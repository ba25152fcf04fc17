"""`hpc_tf.keras.Checkpointing` under tf-keras (TF_USE_LEGACY_KERAS=1, what hpc_tf sets for distributed jobs).

tf-keras's BackupAndRestore keeps its state in a `tf.train.CheckpointManager`: TF writes the `checkpoint` state file
last and atomically, and deletes the previous save only after it, so the newest save it names is always complete (a
kill mid-save leaves the previous one). What hpc_tf adds, per strategy:

- Horovod: the ranks agree on the stop — the request flag is summed over every rank (one tiny allreduce a batch), so
  all of them stop after the same batch; only rank 0 writes (the weights are the same everywhere), then a last
  allreduce holds the others until its save is published.
- Parameter servers: the chief (the coordinator, the only process running this script's fit) checks at the end of
  each epoch (tf-keras allows no batch hooks with ParameterServerStrategy) and saves; hpc_tf stops the servers.
- No strategy: one process saves at the batch it is at.

A request mid-epoch saves the weights with the epoch counted as not done: the next attempt redoes that epoch from
those weights (never skips its rest), as the Keras 3 variant does.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import tensorflow as tf

from . import checkpoint


def _horovod() -> ModuleType | None:
    """horovod.tensorflow when the script initialised Horovod with more than one rank (never imported here first)."""
    if "horovod.tensorflow" not in sys.modules:
        return None
    hvd = sys.modules["horovod.tensorflow"]
    return hvd if hvd.is_initialized() and hvd.size() > 1 else None


class LegacyCheckpointing(tf.keras.callbacks.BackupAndRestore):
    """BackupAndRestore in `HPC_TF_CHECKPOINT_DIR/keras`, kept across attempts, that saves and ends the script with
    `hpc_tf.checkpoint.REQUEUE_EXIT_CODE` when hpc_tf asks (Slurm's warning, requeue_on)."""

    def __init__(self, save_freq: str | int | None = None) -> None:
        """`save_freq`: "epoch" or every N batches; by default the run's `checkpoint_every`."""
        super().__init__(
            backup_dir=str(checkpoint.directory() / "keras"),
            save_freq=checkpoint.every() if save_freq is None else save_freq,
            delete_checkpoint=False,
        )
        self._hvd = _horovod()
        self._writer = self._hvd is None or self._hvd.rank() == 0
        self._stop_at_epoch_end = False  # asked at an epoch's last batch: the epoch ends whole, then the script

    def _ps(self) -> bool:
        return isinstance(self.model.distribute_strategy, tf.distribute.ParameterServerStrategy)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if isinstance(self.model.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
            raise NotImplementedError(
                "hpc_tf.keras.Checkpointing does not support MultiWorkerMirroredStrategy yet (its workers would need "
                "to agree on the step to save): use distributed_backend 'mpi' (Horovod) or 'ps' with requeue_on"
            )
        super().on_train_begin(logs)

    def _implements_train_batch_hooks(self) -> bool:
        return not self._ps()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if not self._ps() and not self._stop_at_epoch_end and self._agreed(checkpoint.requested()):
            if batch + 1 == self.params.get("steps"):  # the epoch's last batch: let it end (its metrics, its save)
                self._stop_at_epoch_end = True
            else:
                self._stop(self._current_epoch, batch)
        super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """The epoch's save; a stop asked for at its last batch (or, with parameter servers, during it) ends here."""
        super().on_epoch_end(epoch, logs)
        if self.save_freq == "epoch":
            self._report(epoch + 1, 0)
        if self._ps() and checkpoint.requested():
            self._stop_at_epoch_end = True
        if self._stop_at_epoch_end:
            if self.save_freq != "epoch":
                self._backup(epoch=epoch)
                self._report(epoch + 1, 0)
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        super().on_train_end(logs)
        if self._stop_at_epoch_end:
            self._exit_after_rank0_saved()

    def _agreed(self, mine: bool) -> bool:
        """Whether any rank was asked to stop: every rank calls this after every batch, so all see the same answer."""
        if self._hvd is None:
            return mine
        total = self._hvd.allreduce(tf.constant([int(mine)]), op=self._hvd.Sum, name="hpc_tf_checkpoint_request")
        return bool(int(total.numpy()[0]))

    def _stop(self, epoch: int, batch: int) -> None:
        """Save after `batch` (rank 0 only), wait for it on every rank, end the script asking for a requeue."""
        if self._writer:
            if self.save_freq == "epoch":  # saved as "epoch - 1 done": the next attempt redoes this epoch
                self._training_state._ckpt_saved_epoch.assign(epoch - 1)
            self._backup(epoch=epoch, batch=batch)
            self._report(epoch, batch + 1)
        self._exit_after_rank0_saved()

    def _exit_after_rank0_saved(self) -> None:
        """End the script asking for a requeue; under Horovod every rank first waits for rank 0's save."""
        if self._hvd is not None:
            self._hvd.allreduce(tf.constant([0]), op=self._hvd.Sum, name="hpc_tf_checkpoint_saved")
        raise SystemExit(checkpoint.REQUEUE_EXIT_CODE)

    def _backup(self, epoch: int, batch: int = 0) -> None:
        if self._writer:  # Horovod's other ranks hold the same weights: one writer, no race on the files
            super()._backup(epoch, batch)

    def _report(self, epoch: int, batch: int) -> None:
        if self._writer:
            checkpoint.saved(epoch * 1_000_000 + batch)
