"""How a task's end becomes the job's outcome: pure decisions, recorded by `hpc_tf.job`.

Distributed 'ps' and 'multiworker': rank 0 (the chief) is the lead. When its entry script ends,
the other tasks stop theirs and exit 0, so the job ends with the chief's exit code. A task whose
process dies first is named `first_failure` and exits non-zero, so `srun --kill-on-bad-exit` ends the
job. A task ended by a signal (cancel, time limit, another task's failure) is never the first failure.
A managed TensorFlow server must never end on its own: if it does, that is a failure even with code 0.
"""

from __future__ import annotations

from typing import Sequence

import msgspec


class TaskEnd(msgspec.Struct, frozen=True):
    """What a task's end means for the job."""

    exit_code: int  # what the task exits with (the launcher sees it)
    lead: bool = False  # record the job's exit code and end time (rank 0)
    signal_lead_exit: bool = False  # tell the other tasks the chief has ended
    first_failure: bool = False  # name this task as the job's first failure
    note: str = ""


# EX_TEMPFAIL (sysexits.h): the script saved on hpc_tf's checkpoint request and asks for the next attempt. The one
# definition: hpc_tf.checkpoint.exit_for_requeue() exits with it, and the Keras callbacks too.
REQUEUE_EXIT_CODE = 75


def shell_code(returncode: int) -> int:
    """A child's end as shells and Slurm report it: killed by signal N is 128 + N (Popen says -N)."""
    return returncode if returncode >= 0 else 128 - returncode


def task_end(
    rank: int,
    backend: str | None,
    server: bool,
    code: int,
    stopped: bool,
    signals: Sequence[str],
    checkpoint_requested: bool = False,
) -> TaskEnd:
    """Decide what a task's end means. `server`: a managed ps/worker TensorFlow server;
    `stopped`: the runtime stopped it (after the chief ended, or a sweep's policy stopped the trial);
    `signals`: what the runtime received; `checkpoint_requested`: this attempt was asked to save and stop.

    Another rank that saved on the request (exit 75) ends cleanly (0): `srun --kill-on-bad-exit` must not kill
    rank 0's runtime before it has recorded the attempt and asked Slurm for the next one."""
    if rank != 0 and checkpoint_requested and code == REQUEUE_EXIT_CODE:
        return TaskEnd(0)
    if rank == 0:
        if stopped:  # a sweep's policy stopped the trial on what rank 0 printed: a clean end
            return TaskEnd(0, lead=True, signal_lead_exit=backend in ("ps", "multiworker"))
        return TaskEnd(
            code,
            lead=True,
            signal_lead_exit=backend in ("ps", "multiworker"),
            first_failure=code != 0 and backend is not None and not signals,
        )
    if stopped:
        return TaskEnd(0)
    if signals:
        return TaskEnd(code)
    if code == 0 and not server:
        return TaskEnd(0)
    return TaskEnd(code or 1, first_failure=True, note="the TensorFlow server ended before the chief" if server else "")
