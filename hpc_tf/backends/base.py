"""What every backend offers: submit a rendered job, say what it knows of several jobs in one call, cancel."""

from __future__ import annotations

from typing import Protocol, Sequence

from ..core.answers import Answer
from ..rundir import RunDir


class Backend(Protocol):
    name: str
    queries_per_call: int  # scheduler calls one `states` call costs (0 for the local backend)

    def submit(self, run: RunDir, script: str) -> str:
        """Submit the job whose files are in `run`; return its job id. Raises only hpc_tf's errors."""
        ...

    def states(self, job_ids: Sequence[str]) -> dict[str, Answer]:
        """An answer for every id asked (core.scheduler): a JobState, NotKnown (a working scheduler does not
        know it) or NoAnswer (the scheduler did not answer: nothing may be concluded about the job)."""
        ...

    def cancel(self, job_id: str) -> None: ...
