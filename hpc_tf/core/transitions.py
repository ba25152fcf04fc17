"""The named transitions of `status.json`: pure functions of (old status, event) → new status.

`RunDir.transition` applies one under the status lock to the status as it is on disk *then*, so a
writer never acts on a stale read: a transition of a final status returns it unchanged (except
`observed`, which may revise a LOST verdict once the scheduler answers for the job again).
"""

from __future__ import annotations

import datetime as _dt

import msgspec

from .answers import Answer, JobState, NoAnswer, NotKnown
from .records import EARLY_TERMINATED, LOST, TERMINAL_STATES, Attempt, EarlyStop, FirstFailure, RunStatus

# A job the scheduler does not know, that recorded no end, is declared lost only after this long:
# a freshly submitted job can be missing from accounting for a few seconds.
FORGOTTEN_AFTER_SECONDS = 120

_replace = msgspec.structs.replace


def submitted(run_id: str, experiment: str, backend: str, now: str) -> RunStatus:
    """The run directory is claimed; nothing is queued yet."""
    return RunStatus(run_id=run_id, experiment=experiment, backend=backend, state="PENDING", submit_time=now)


def trial_created(
    run_id: str, experiment: str, backend: str, now: str, job_id: str, sweep: str, index: int
) -> RunStatus:
    """A sweep's array task made its trial's run directory: the trial is that task (`A_i`), not yet started."""
    return RunStatus(
        run_id=run_id,
        experiment=experiment,
        backend=backend,
        state="PENDING",
        submit_time=now,
        job_id=job_id,
        sweep=sweep,
        trial_index=index,
    )


def early_stopped(status: RunStatus, stop: EarlyStop) -> RunStatus:
    """The sweep's policy stopped the trial; the first decision is kept."""
    if status.final or status.early_stop is not None:
        return status
    return _replace(status, early_stop=stop)


def _end_word(status: RunStatus, state: str) -> str:
    """A trial its policy stopped that ended cleanly says so: EARLY_TERMINATED, not COMPLETED."""
    return EARLY_TERMINATED if state == "COMPLETED" and status.early_stop is not None else state


def queued(status: RunStatus, job_id: str) -> RunStatus:
    return _replace(status, job_id=job_id)


def submit_failed(status: RunStatus, message: str, now: str) -> RunStatus:
    """A step of the submission failed after the run directory was claimed: the run is FAILED, listed."""
    if status.final:
        return status
    return _replace(status, state="FAILED", final=True, end_time=now, message=message)


def started(status: RunStatus, now: str, nodes: list[str], restart_count: int = 0) -> RunStatus:
    """The lead task started. `restart_count` is Slurm's SLURM_RESTART_COUNT: a start with a higher count
    than recorded is a restart (Slurm requeued the job), recorded so that nobody mistakes it for the first run."""
    if status.final:
        return status
    status = _replace(status, attempts=_with_attempt(status, now, nodes, restart_count))
    if restart_count > status.restarts:
        return _replace(
            status,
            state="RUNNING",
            start_time=now,
            nodes=nodes,
            end_time=None,
            exit_code=None,
            signals=[],
            first_failure=None,
            restarts=restart_count,
            note=f"restarted by the scheduler at {now} (restart {restart_count}); the previous attempt "
            f"started at {status.start_time} on {','.join(status.nodes) or '?'}",
        )
    return _replace(status, state="RUNNING", start_time=now, nodes=nodes)


def _with_attempt(status: RunStatus, now: str, nodes: list[str], restart_count: int) -> list[Attempt]:
    """The attempts with this start: a new one for a restart Slurm made, else the current one's start."""
    attempts = list(status.attempts)
    if not attempts or restart_count > attempts[-1].n:
        attempts.append(Attempt(n=restart_count, job_id=status.job_id, nodes=nodes, start=now))
    else:
        attempts[-1] = _replace(attempts[-1], nodes=nodes, start=now)
    return attempts


def attempt_ended(
    status: RunStatus,
    cause: str,
    checkpoint_step: int | None,
    decision: str,
    requeued: bool,
    now: str,
    refused: str = "not requeued",
) -> RunStatus:
    """The current attempt was ended by `cause` (a warning signal, a preemption, a node failure): what was decided
    is recorded; a requeued run is REQUEUED (not final) until Slurm starts its next attempt. `refused` words a
    refusal: "not requeued" (hpc_tf would have asked), "not restarted" (Slurm restarted it, hpc_tf stops it). `now` ""
    leaves the end unknown: an attempt killed without notice is only found ended when the next one starts."""
    if status.final or not status.attempts:
        return status
    last = _replace(
        status.attempts[-1], end=now or None, cause=cause, checkpoint_step=checkpoint_step, requeue=decision
    )
    changed = _replace(status, attempts=[*status.attempts[:-1], last])
    if not requeued:
        return _replace(changed, message=f"{refused}: {decision}")
    counts = {**status.restarts_by_cause, cause: status.restarts_by_cause.get(cause, 0) + 1}
    return _replace(changed, state="REQUEUED", restarts_by_cause=counts)


def lead_exited(status: RunStatus, exit_code: int, now: str, signals: list[str]) -> RunStatus:
    """The lead task's process ended; the state stays until the scheduler confirms the end."""
    if status.final:
        return status
    return _replace(status, exit_code=exit_code, end_time=now, signals=signals or status.signals)


def setup_failed(status: RunStatus, message: str, now: str) -> RunStatus:
    if status.final:
        return status
    return _replace(status, exit_code=2, end_time=now, message=message)


def failed_first(status: RunStatus, failure: FirstFailure) -> RunStatus:
    """Name the task that failed first; later failures never overwrite it."""
    if status.first_failure is not None:
        return status
    return _replace(status, first_failure=failure)


def finalised(status: RunStatus, state: str, exit_code: int | None, now: str, reason: str = "") -> RunStatus:
    """The end as the local supervisor saw it (it plays the scheduler's part)."""
    if status.final:
        return status
    code = status.exit_code if status.exit_code is not None else exit_code
    return _replace(
        status,
        state=_end_word(status, state),
        exit_code=code,
        end_time=status.end_time or now,
        final=True,
        reason=reason or status.reason,
        scheduler_unreachable_since=None,
        scheduler_error="",
    )


def observed(status: RunStatus, answer: Answer, now: str) -> RunStatus:
    """Merge what the scheduler said about the run's job (see `core.scheduler`)."""
    if status.final and status.state != LOST:
        return status
    if isinstance(answer, NoAnswer):
        return _replace(
            status, scheduler_unreachable_since=status.scheduler_unreachable_since or now, scheduler_error=answer.error
        )
    status = _replace(status, scheduler_unreachable_since=None, scheduler_error="")
    if isinstance(answer, NotKnown):
        return _not_known(status, now)
    return _known(status, answer, now)


def _known(status: RunStatus, seen: JobState, now: str) -> RunStatus:
    revised = status.state == LOST
    note = "" if revised else status.note
    if seen.state in TERMINAL_STATES:
        exit_code = status.exit_code
        if exit_code is None or (seen.state == "COMPLETED") != (exit_code == 0):
            exit_code = seen.exit_code if seen.exit_code is not None else exit_code
        reason = seen.reason if seen.reason not in ("None", "") else status.reason
        return _replace(
            status,
            state=_end_word(status, seen.state),
            exit_code=exit_code,
            final=True,
            note=note,
            reason=reason,
            end_time=status.end_time or now,
        )
    if seen.state != status.state:  # any non-terminal word (CONFIGURING, SUSPENDED, REQUEUED, ...) is passing
        return _replace(status, state=seen.state, final=False, note=note)
    return status


def _not_known(status: RunStatus, now: str) -> RunStatus:
    """A working scheduler does not know the job: judge from the run's own records."""
    if status.state == LOST:
        return status
    if status.end_time and status.exit_code is not None:
        state = "COMPLETED" if status.exit_code == 0 else "FAILED"
        return _replace(
            status,
            state=_end_word(status, state),
            final=True,
            note="final state from the run directory: the scheduler no longer knows the job",
        )
    if _age_seconds(status.submit_time, now) > FORGOTTEN_AFTER_SECONDS:
        return _replace(
            status,
            state=LOST,
            final=True,
            note=f"the scheduler answered and no longer knows job {status.job_id}; the run recorded "
            "no end (revised if the scheduler reports the job again)",
        )
    return status


def _age_seconds(stamp: str | None, now: str) -> float:
    try:
        start = _dt.datetime.fromisoformat(stamp) if stamp else None
        end = _dt.datetime.fromisoformat(now)
    except ValueError:
        return 0.0
    return (end - start).total_seconds() if start else 0.0
