"""What a task watches while its entry script runs, asked every supervise.POLL_SECONDS: the chief's end (ps,
multiworker), a sweep trial's early stop (decided by rank 0), the sweep's max_duration_minutes, and the primary
metric in rank 0's stdout when it comes from `metric_patterns` (the runtime applies the policy itself then).
"""

from __future__ import annotations

import re
import time
from typing import Callable

from ..core.records import JobRecord
from ..rundir import RunDir

WORKER_GRACE_SECONDS = 5.0  # a multiworker worker's time to end by itself after the chief


class Scraper:
    """Applies the sweep's policy to the primary metric as rank 0 prints it (`metric_patterns`)."""

    def __init__(self, run: RunDir, pattern: str, sweep_dir: str) -> None:
        from ..sweeps.early_stop import trial_policy

        self.run, self.pattern = run, re.compile(pattern)
        self.trial = trial_policy(sweep_dir)
        self.offset = 0

    def __call__(self) -> bool:
        """Read what rank 0 printed since the last call (whole lines); True once the policy stops the trial."""
        from ..sweeps.early_stop import observe

        try:
            with open(self.run.rank_out(0), "rb") as out:
                out.seek(self.offset)
                chunk = out.read()
        except OSError:
            return False
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        for match in self.pattern.finditer(chunk[:end].decode(errors="replace")):
            decision = observe(self.run, self.trial, match.group(1))
            if decision is not None and decision.terminate:
                return True
        return False


def stop_condition(run: RunDir, job: JobRecord, rank: int, attempt: int = 0) -> Callable[[], bool] | None:
    """What makes the runtime stop this task's entry script (None: nothing, wait for it)."""
    checks: list[Callable[[], bool]] = []
    if rank != 0 and job.distributed_backend in ("ps", "multiworker"):
        grace = WORKER_GRACE_SECONDS if job.distributed_backend == "multiworker" else 0.0
        checks.append(_lead_ended(run, attempt, grace))
    if job.trial is not None:
        if rank != 0:
            checks.append(run.early_stop_file.exists)
        else:
            checks.append(_deadline_watch(job))
            metric = _primary_metric(job)
            if metric in job.metric_patterns:
                checks.append(Scraper(run, job.metric_patterns[metric], job.trial.sweep_dir))
    if not checks:
        return None
    return lambda: any(check() for check in checks)


def _lead_ended(run: RunDir, attempt: int, grace: float) -> Callable[[], bool]:
    """The chief's end, seen `grace` seconds ago: a parameter server never ends by itself (grace 0), but a
    multiworker worker that started later than the chief may still be writing its outputs when the chief ends;
    it is stopped only if it has not ended `grace` seconds after (timed here: the nodes' clocks may differ)."""
    seen: list[float] = []

    def check() -> bool:
        if not seen and run.lead_exit(attempt).exists():
            seen.append(time.monotonic())
        return bool(seen) and time.monotonic() - seen[0] >= grace

    return check


def _primary_metric(job: JobRecord) -> str:
    from ..sweeps.sweepdir import SweepDir

    assert job.trial is not None
    return SweepDir(job.trial.sweep_dir).read().primary_metric_name


def _deadline_watch(job: JobRecord) -> Callable[[], bool]:
    """Rank 0 of a trial ends the whole sweep once max_duration_minutes has passed (scancel stops this task too)."""
    from ..sweeps.sweepdir import SweepDir
    from ..sweeps.trial import end_sweep, past_deadline

    assert job.trial is not None
    sweep = SweepDir(job.trial.sweep_dir)
    record = sweep.read()

    def check() -> bool:
        if past_deadline(record) and not sweep.read().stopped:
            end_sweep(sweep, f"max_duration_minutes ({record.max_duration_minutes}) reached")
        return False

    return check
