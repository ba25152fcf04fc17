"""The named transitions of `sweep.json` (core.records.SweepRecord): pure functions of (old record, event).

`SweepDir.update` applies one under the sweep's lock to the record as it is on disk then. Once a sweep is
FAILED (its submission) or CANCELLED it stays so; what was submitted is never forgotten (`chunks` keeps
every array's job id), so "which arrays were already submitted" can always be answered.
"""

from __future__ import annotations

import datetime as _dt

import msgspec

from ...core.records import ArrayChunk, SweepRecord

_replace = msgspec.structs.replace
ENDED = ("FAILED", "CANCELLED")


def chunk_queued(record: SweepRecord, index: int, job_id: str) -> SweepRecord:
    """sbatch accepted array `index`; the sweep is SUBMITTED once every array is."""
    chunks = list(record.chunks)
    chunks[index] = _replace(chunks[index], job_id=job_id)
    done = all(c.job_id for c in chunks)
    state = "SUBMITTED" if done and record.state == "SUBMITTING" else record.state
    return _replace(record, chunks=chunks, state=state)


def submission_failed(record: SweepRecord, message: str) -> SweepRecord:
    """An sbatch failed: the arrays already queued stay recorded (and are named in the message)."""
    if record.state in ENDED:
        return record
    return _replace(record, state="FAILED", message=message)


def stopped(record: SweepRecord, why: str, cancelled: bool = True) -> SweepRecord:
    """The sweep was ended before all its trials ran: `hpc_tf sweep cancel`, or max_duration_minutes."""
    if record.stopped:
        return record
    return _replace(record, stopped=why, state="CANCELLED" if cancelled else record.state)


def throttled(record: SweepRecord, max_concurrent_runs: int) -> SweepRecord:
    return _replace(record, max_concurrent_runs=max_concurrent_runs)


def past_deadline(record: SweepRecord, now: _dt.datetime) -> bool:
    """Whether the sweep's max_duration_minutes has passed at `now` (timezone-aware). A damaged deadline (not a
    timestamp, no time zone) is never passed: trials must not die of it; `sweep status` names it."""
    if not record.deadline:
        return False
    try:
        return now >= _dt.datetime.fromisoformat(record.deadline)
    except (ValueError, TypeError, OverflowError):
        return False


def task_of(chunks: list[ArrayChunk], index: int) -> str | None:
    """The Slurm id (`A_i`) of the array task that runs trial `index`; None if its array was never queued."""
    for chunk in chunks:
        if chunk.offset <= index < chunk.offset + chunk.count:
            return f"{chunk.job_id}_{index - chunk.offset}" if chunk.job_id else None
    return None


def submitted_ids(chunks: list[ArrayChunk]) -> list[str]:
    """The job ids of the arrays sbatch accepted, in order."""
    return [c.job_id for c in chunks if c.job_id]
