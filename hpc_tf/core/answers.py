"""What a scheduler says about one job: a state, "not known", or no answer at all.

The three are never confused: a scheduler that did not answer (timeout, connection refused,
non-zero exit) says nothing about a job, so a run's recorded state is kept; only a *working*
scheduler that does not know a job lets hpc_tf judge the run from its own records.
"""

from __future__ import annotations

from typing import Union

import msgspec


class JobState(msgspec.Struct, frozen=True):
    """The scheduler knows the job: Slurm's state word and, once known, its exit code and reason."""

    state: str
    exit_code: int | None = None
    reason: str = ""


class NotKnown(msgspec.Struct, frozen=True):
    """A working scheduler answered and does not know this job (purged, or never existed)."""

    said: str = ""


class NoAnswer(msgspec.Struct, frozen=True):
    """The scheduler did not answer (timeout, refused connection, error exit); `error` says what happened."""

    error: str


Answer = Union[JobState, NotKnown, NoAnswer]
