"""For training scripts whose runs may outlive their time limit (requeue_on).

    import hpc_tf.checkpoint as ckpt
    state = load(ckpt.directory())           # resume from the newest complete checkpoint, if any
    for step in ...:
        train_step()
        if ckpt.requested():                 # Slurm's warning came: save, then ask to be requeued
            save(ckpt.directory()); ckpt.exit_for_requeue()

Nothing here imports TensorFlow; `hpc_tf.keras` has the Keras callback.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, NoReturn

from .core.lifecycle import REQUEUE_EXIT_CODE

__all__ = ["REQUEUE_EXIT_CODE", "directory", "every", "exit_for_requeue", "requested", "restart_count", "saved"]


def directory() -> Path:
    """This run's checkpoint folder (the same in every attempt); ./checkpoints outside an hpc_tf run."""
    return Path(os.environ.get("HPC_TF_CHECKPOINT_DIR", "checkpoints"))


def requested() -> bool:
    """Whether this attempt was asked to save and stop (a stat: cheap enough to ask every step)."""
    path = os.environ.get("HPC_TF_CHECKPOINT_REQUEST", "")
    return bool(path) and os.path.exists(path)


def restart_count() -> int:
    """0 for the first attempt, then Slurm's SLURM_RESTART_COUNT."""
    return int(os.environ.get("HPC_TF_RESTART_COUNT") or 0)


def every() -> str | int:
    """How often to save besides the warning (`checkpoint_every`): "epoch", or a number of batches."""
    value = os.environ.get("HPC_TF_CHECKPOINT_EVERY", "epoch")
    return int(value) if value.isdigit() else "epoch"


PROGRESS_FILE = ".hpc_tf-progress"  # in the checkpoint folder: the step of the newest complete save


def saved(step: int) -> None:
    """Say how far the newest complete checkpoint is (a step that grows): a run whose attempts stop advancing is
    not requeued forever. Without it, hpc_tf takes any newer file in the checkpoint folder as progress."""
    folder = directory()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{PROGRESS_FILE}.{os.getpid()}"
    tmp.write_text(f'{{"step": {int(step)}}}\n')
    os.replace(tmp, folder / PROGRESS_FILE)


def exit_for_requeue() -> NoReturn:
    """End the script with REQUEUE_EXIT_CODE (75) after saving: hpc_tf requeues the run if its requeue_on and
    max_restarts allow (any other exit code is the script's own end)."""
    raise SystemExit(REQUEUE_EXIT_CODE)


def __getattr__(name: str) -> Any:
    """Deprecated names, kept for scripts written against hpc_tf 0.1 (`ckpt.exit()`, `ckpt.REQUEUE_ME`); `exit` is
    not a module global, so nothing here shadows the builtin."""
    if name in ("exit", "REQUEUE_ME"):
        new = "exit_for_requeue" if name == "exit" else "REQUEUE_EXIT_CODE"
        warnings.warn(f"hpc_tf.checkpoint.{name} is deprecated: use hpc_tf.checkpoint.{new}", DeprecationWarning, 2)
        return exit_for_requeue if name == "exit" else REQUEUE_EXIT_CODE
    raise AttributeError(f"module 'hpc_tf.checkpoint' has no attribute {name!r}")
