"""What every backend offers: submit a rendered job, report job states in one call, cancel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from ..rundir import RunDir


@dataclass(frozen=True)
class JobState:
    """A scheduler's view of one job: Slurm's state word and, once known, its exit code."""

    state: str
    exit_code: int | None = None
    reason: str = ""


class Backend(Protocol):
    name: str

    def submit(self, run: RunDir, script: str) -> str:
        """Submit the job whose files are in `run`; return its job id."""
        ...

    def states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """Current states of several jobs in one scheduler query; unknown ids are left out."""
        ...

    def cancel(self, job_id: str) -> None:
        ...
