"""For training scripts whose runs may outlive their time limit (requeue_on).

    import hpc_tf.checkpoint as ckpt
    state = load(ckpt.directory())           # resume from the newest complete checkpoint, if any
    for step in ...:
        train_step()
        if ckpt.requested():                 # Slurm's warning came: save, then ask to be requeued
            save(ckpt.directory()); ckpt.exit()

Nothing here imports TensorFlow; `hpc_tf.keras` has the Keras callback.
"""

from __future__ import annotations

import os
from pathlib import Path


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


REQUEUE_ME = 75  # EX_TEMPFAIL: "saved; run me again" (any other exit code is the script's own end)


def exit() -> None:
    """End the script with REQUEUE_ME after saving: hpc_tf requeues the run if its requeue_on and max_restarts allow."""
    raise SystemExit(REQUEUE_ME)
