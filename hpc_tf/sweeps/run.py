"""Following a sweep: `SweepRun` (status, wait, best, cancel, throttle, children), HyperDrive's HyperDriveRun.

A sweep's status costs one scheduler query per poll, whatever its size: every task of its arrays is asked
about at once (`SlurmBackend.array_tasks`). Trials that have a run directory get the answer merged into
their status.json as any run does; trials that never started are reported from the scheduler's answer.
`max_duration_minutes` is enforced here too: a status asked after the sweep's deadline cancels what is left.

A damaged record affects its own line only: a trial whose status.json cannot be used is DAMAGED with the
reason (`TrialView.damaged`, also set for a damaged line of its primary metric), and what is wrong with the
sweep's own records (a `deadline` that is not a timestamp, a `trial_count` its arrays do not hold, a folder
named like a trial that is none, an `optuna.journal` Optuna cannot replay) is listed in `SweepStatus.damaged`;
every other trial is shown as usual.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import stat
import time
from pathlib import Path
from typing import Any, Callable

import msgspec

from ..core import transitions
from ..core.answers import JobState, NoAnswer
from ..core.records import EARLY_TERMINATED, TERMINAL_STATES, EarlyStop, SweepRecord
from ..errors import RunError, SubmissionError
from ..rundir import RunDir, file_kind, read_bounded, utc_now
from ..runs.follow import DAMAGED, Run, read_status_or_damaged, timestamp_problem
from ..settings import Settings
from .core import transitions as st
from .core.parse import MAX_TOTAL_RUNS
from .core.spec import GOALS
from .early_stop import number
from .sweepdir import SweepDir, find_sweep, trial_index

NOT_SUBMITTED = "NOT_SUBMITTED"


class TrialView(msgspec.Struct, frozen=True, kw_only=True):
    """One trial as `sweep status` shows it."""

    index: int
    trial_id: str
    state: str
    final: bool
    job_id: str | None = None
    hyperparameters: dict[str, Any] = {}
    history: list[float] = []
    metric: float | None = None  # the last primary-metric value the trial logged
    early_stop: EarlyStop | None = None
    run_dir: str | None = None
    damaged: str = ""  # what is wrong with its records ("" when nothing); left out of `best`


class SweepStatus(msgspec.Struct, frozen=True, kw_only=True):
    sweep_id: str
    experiment: str
    state: str  # PENDING, RUNNING, COMPLETED, CANCELLED, FAILED (its submission)
    final: bool
    counts: dict[str, int]
    trials: list[TrialView]
    primary_metric_name: str
    primary_metric_goal: str
    max_concurrent_runs: int | None
    array_job_ids: list[str]
    stopped: str = ""
    message: str = ""
    scheduler_error: str = ""
    damaged: list[str] = []  # what is wrong with the sweep's own records (each trial's: TrialView.damaged)


class SweepRun:
    """A submitted sweep, found through its directory; safe to use from any process."""

    def __init__(self, sweep_dir: SweepDir | str | Path, settings: Settings | None = None) -> None:
        self.dir = sweep_dir if isinstance(sweep_dir, SweepDir) else SweepDir(sweep_dir)
        self.settings = settings or Settings.from_env()
        if not self.dir.exists():
            raise RunError(f"not a sweep directory (no sweep.json): {self.dir.path}")
        self._backend: Any = None
        self._error = ""  # what the scheduler said when it did not answer the last status

    @classmethod
    def get(cls, sweep: str | Path, runs_dir: str | Path | None = None) -> "SweepRun":
        settings = Settings.from_env(runs_dir=runs_dir)
        return cls(find_sweep(str(sweep), settings.runs_dir), settings)

    @property
    def sweep_id(self) -> str:
        return self.dir.sweep_id

    def __repr__(self) -> str:
        return f"SweepRun({str(self.dir.path)!r})"

    def record(self) -> SweepRecord:
        return self.dir.read()

    def backend(self) -> Any:
        if self._backend is None:
            from ..backends.slurm import SlurmBackend

            self._backend = SlurmBackend(self.settings)
        return self._backend

    # ------------------------------------------------------------------ status
    def status(self) -> SweepStatus:
        """Every trial's state, from one scheduler query (none once every trial is final)."""
        record = self.record()
        runs = self.dir.trial_dirs()  # listed once: the query and the views share it
        indexes, damaged = self._checked(record, runs)
        views = self._views(record, indexes, self._ask(record, len(indexes), runs), runs)
        if record.sampling == "bayesian":
            damaged += self._fail_stale_optuna_trials(record, views)
        deadline_ok = not timestamp_problem(record.deadline)
        late = deadline_ok and not record.stopped and st.past_deadline(record, _dt.datetime.now(_dt.timezone.utc))
        if late and not all(v.final for v in views):
            self.cancel(f"max_duration_minutes ({record.max_duration_minutes}) reached")
            record = self.record()
        return summarise(record, views, self._error, damaged)

    def _checked(self, record: SweepRecord, runs: list[RunDir]) -> tuple[range | list[int], list[str]]:
        """The trial numbers to show, and what is wrong with the sweep's own records. `trial_count` is read
        from disk, so it is believed only when its arrays hold as many trials (never more than a sweep can
        have); otherwise the arrays' own count, or else the trials that have a directory, are shown."""
        where = self.dir.sweep_json
        why = timestamp_problem(record.deadline)
        damaged = [f"{where}: deadline {why}: max_duration_minutes is not enforced here"] if why else []
        if record.primary_metric_goal not in GOALS:
            damaged.append(
                f"{where}: primary_metric_goal {record.primary_metric_goal!r} is not one of {', '.join(GOALS)}"
            )
        held = _chunk_total(record)
        indexes: range | list[int] = range(record.trial_count)
        if not (1 <= record.trial_count <= MAX_TOTAL_RUNS and held in (None, record.trial_count)):
            count = _count_text(record.trial_count)
            if held is not None:
                indexes = range(held)
                damaged.append(f"{where}: trial_count {count} is not what its arrays hold ({held}): showing {held}")
            else:
                indexes = sorted(trial_index(self.sweep_id, run.run_id) or 0 for run in runs)
                damaged.append(f"{where}: trial_count {count} is not possible: showing the trials that have a folder")
        shown = set(indexes)
        for run in runs:
            if trial_index(self.sweep_id, run.run_id) not in shown:
                damaged.append(f"{run.path}: beyond the sweep's {len(indexes)} trials (not shown)")
        damaged += [f"{path}: named like a trial of this sweep but is none (not shown)" for path in self.dir.strays()]
        return indexes, damaged

    def _fail_stale_optuna_trials(self, record: SweepRecord, views: list[TrialView]) -> list[str]:
        """A trial whose job was killed before it told Optuna stays RUNNING there: the run's status decides.
        What is wrong with the journal, if anything: Optuna opens it for appending (a FIFO would block) and replays
        it whole, so only a regular file is given to it, and a damaged one is named, not a traceback."""
        import importlib.util

        journal = self.dir.journal
        if importlib.util.find_spec("optuna") is None or not journal.exists():
            return []
        left = "stale Optuna trials are not failed"
        try:
            mode = journal.stat().st_mode
        except OSError as exc:
            return [f"cannot read {journal}: {exc.strerror or exc}: {left}"]
        if not stat.S_ISREG(mode):
            return [f"{journal} is not a regular file ({file_kind(mode)}): {left}"]
        from .bayesian import fail_stale

        final = {v.index for v in views if v.final}
        try:
            fail_stale(self.dir.path, record.sweep_id, lambda index: index in final)
        except (ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError, OverflowError) as exc:
            return [f"{journal} is damaged ({type(exc).__name__}: {str(exc)[:200]}): {left}"]
        except OSError as exc:
            return [f"cannot read {journal}: {exc.strerror or exc}: {left}"]
        return []

    def _ask(self, record: SweepRecord, count: int, runs: list[RunDir]) -> dict[str, JobState]:
        """One query for every task of the sweep's arrays; none once every trial started and ended."""
        self._error = ""
        ids = st.submitted_ids(record.chunks)
        every_trial_ended = len(runs) >= count and all(read_status_or_damaged(r).final for r in runs)
        if not ids or every_trial_ended:
            return {}
        answer = self.backend().array_tasks(ids)
        if isinstance(answer, NoAnswer):
            self._error = answer.error
            return {}
        found: dict[str, JobState] = answer
        return found

    def _views(
        self, record: SweepRecord, indexes: range | list[int], tasks: dict[str, JobState], runs: list[RunDir]
    ) -> list[TrialView]:
        dirs = {trial_index(self.sweep_id, run.run_id): run for run in runs}
        return [self._view(record, i, dirs.get(i), tasks) for i in indexes]

    def _view(self, record: SweepRecord, index: int, run: RunDir | None, tasks: dict[str, JobState]) -> TrialView:
        task = st.task_of(record.chunks, index)
        seen = tasks.get(task or "")
        trial_id = f"{record.sweep_id}_{index}"
        if run is None:
            state = _unstarted_state(record, seen, task)
            return TrialView(index=index, trial_id=trial_id, state=state, final=state in TERMINAL_STATES, job_id=task)
        status = read_status_or_damaged(run)
        if seen is not None and not status.final:
            try:
                status = run.transition(lambda s: transitions.observed(s, seen, utc_now()))
            except (RunError, OSError):
                pass
        history, bad_metric = read_checked_history(run.primary_metric_file)
        try:
            hyperparameters = run.read_job().trial.hyperparameters  # type: ignore[union-attr]
        except (RunError, AttributeError):
            hyperparameters = {}
        return TrialView(
            index=index,
            trial_id=trial_id,
            state=status.state,
            final=status.final,
            job_id=status.job_id or task,
            hyperparameters=hyperparameters,
            history=history,
            metric=history[-1] if history and math.isfinite(history[-1]) else None,
            early_stop=status.early_stop,
            run_dir=str(run.path),
            damaged="; ".join(why for why in (status.message if status.state == DAMAGED else "", bad_metric) if why),
        )

    # ------------------------------------------------------------------ waiting, results
    def wait_for_completion(
        self, timeout: float | None = None, progress: Callable[[SweepStatus], None] | None = None
    ) -> SweepStatus:
        """Poll (one query each, backing off from 1 s to 10 s) until every trial is final."""
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = 1.0
        while True:
            status = self.status()
            if progress is not None:
                progress(status)
            if status.final:
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise RunError(f"sweep {self.sweep_id} not finished after {timeout} s ({status.counts})")
            time.sleep(interval)
            interval = min(interval * 1.3, 10.0)

    def best(self, include_failed: bool = True, include_canceled: bool = True) -> TrialView | None:
        """The trial with the best primary metric (its last logged value); ties go to the lower trial number."""
        return best_trial(self.status(), include_failed, include_canceled)

    def get_best_run_by_primary_metric(self, include_failed: bool = True, include_canceled: bool = True) -> Run | None:
        """HyperDrive's name: the best trial as a Run (None while no trial logged the metric)."""
        best = self.best(include_failed, include_canceled)
        return Run(best.run_dir, self.settings) if best is not None and best.run_dir else None

    def get_children(self) -> list[Run]:
        """Every trial that has started, as a Run, in trial order."""
        return [Run(run, self.settings) for run in self.dir.trial_dirs()]

    # ------------------------------------------------------------------ changing it
    def cancel(self, why: str = "") -> None:
        """Cancel every array of the sweep (pending and running trials); sweep.json says why."""
        record = self.dir.update(lambda r: st.stopped(r, why or f"cancelled by the user at {utc_now()}"))
        self._each_array(record, self.backend().cancel)

    def throttle(self, max_concurrent_runs: int) -> None:
        """Change how many trials may run at once (Slurm's ArrayTaskThrottle, on each array)."""
        self._each_array(self.record(), lambda job_id: self.backend().throttle(job_id, max_concurrent_runs))
        self.dir.update(lambda r: st.throttled(r, max_concurrent_runs))

    def _each_array(self, record: SweepRecord, action: Callable[[str], None]) -> None:
        """Do `action` to every array of the sweep; an array that already ended may refuse (Slurm: "already
        finished"), which is an error only when every array refused."""
        errors = []
        ids = st.submitted_ids(record.chunks)
        for job_id in ids:
            try:
                action(job_id)
            except SubmissionError as exc:
                errors.append(exc)
        if ids and len(errors) == len(ids):
            raise errors[0]


def _unstarted_state(record: SweepRecord, seen: JobState | None, task: str | None) -> str:
    """A trial without a run directory: what the scheduler says of its array task."""
    if task is None:
        return NOT_SUBMITTED if record.state != "FAILED" else "FAILED"
    if seen is None:
        return "CANCELLED" if record.stopped else "PENDING"
    if seen.state == "COMPLETED":  # the task started after the sweep's end and only cancelled the rest
        return "CANCELLED"
    return seen.state


def summarise(
    record: SweepRecord, views: list[TrialView], error: str = "", damaged: list[str] | None = None
) -> SweepStatus:
    counts: dict[str, int] = {}
    for view in views:
        counts[view.state] = counts.get(view.state, 0) + 1
    final = all(v.final for v in views) or (record.state == "FAILED" and not st.submitted_ids(record.chunks))
    if record.state == "FAILED":
        state = "FAILED"
    elif record.stopped and final:
        state = "CANCELLED"
    elif final:
        state = "COMPLETED"
    else:
        state = "RUNNING" if any(v.state == "RUNNING" for v in views) else "PENDING"
    return SweepStatus(
        sweep_id=record.sweep_id,
        experiment=record.experiment,
        state=state,
        final=final,
        counts=counts,
        trials=views,
        primary_metric_name=record.primary_metric_name,
        primary_metric_goal=record.primary_metric_goal,
        max_concurrent_runs=record.max_concurrent_runs,
        array_job_ids=st.submitted_ids(record.chunks),
        stopped=record.stopped,
        message=record.message,
        scheduler_error=error,
        damaged=damaged or [],
    )


def best_trial(status: SweepStatus, include_failed: bool = True, include_canceled: bool = True) -> TrialView | None:
    """The best trial by its last primary-metric value; ties go to the lower trial number. A damaged trial is
    left out (what it logged or how it ended is not known); a goal that is neither is a RunError."""
    if status.primary_metric_goal not in GOALS:
        raise RunError(
            f"sweep {status.sweep_id}: primary_metric_goal {status.primary_metric_goal!r} is not one of "
            f"{', '.join(GOALS)} (sweep.json is damaged): no best trial"
        )
    left_out: set[str] = set()
    if not include_failed:
        left_out |= TERMINAL_STATES - {"COMPLETED", "CANCELLED"}
    if not include_canceled:
        left_out |= {"CANCELLED", EARLY_TERMINATED}
    scored = [v for v in status.trials if v.metric is not None and v.state not in left_out and not v.damaged]
    if not scored:
        return None
    sign = 1.0 if status.primary_metric_goal == "maximize" else -1.0
    return max(scored, key=lambda v: (sign * (v.metric or 0.0), -v.index))


def _chunk_total(record: SweepRecord) -> int | None:
    """How many trials the sweep's arrays hold, when they are consecutive from trial 0 and within what a sweep
    can have (None when they do not say: no arrays, or damaged ones)."""
    total = 0
    for chunk in record.chunks:
        if chunk.offset != total or not 1 <= chunk.count <= MAX_TOTAL_RUNS:
            return None
        total += chunk.count
    return total if 1 <= total <= MAX_TOTAL_RUNS else None


def _count_text(count: int) -> str:
    return str(count) if count.bit_length() < 64 else f"<an integer of {count.bit_length()} bits>"


def read_checked_history(path: Path) -> tuple[list[float], str]:
    """A trial's primary-metric values as `early_stop.read_history` reads them (a line that is not JSON is
    skipped: it is being written; a value that is not a number is NaN), and what is damaged in the file ("" if
    nothing): a line read_history cannot read at all (nested too deep, a number too long or too large for a
    float) counts as NaN here, the worst a trial can report, and is named. Only a regular file is read."""
    try:
        if not (path.exists() or path.is_symlink()):
            return [], ""
        text = read_bounded(path).decode("utf-8", errors="replace")
    except (RunError, OSError) as exc:
        return [], str(exc)
    values: list[float] = []
    bad: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        try:
            value = json.loads(line)["value"]
            if isinstance(value, int) and not isinstance(value, bool):
                float(value)  # OverflowError for an integer too large for a float: counted NaN, and named
            values.append(number(value))
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
        except (ValueError, RecursionError, OverflowError) as exc:
            values.append(math.nan)
            bad.append(f"line {n} ({_unreadable(exc)})")
    return values, f"{path}: {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}" if bad else ""


def _unreadable(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply to read"
    if isinstance(exc, OverflowError):
        return "a number too large for a float"
    return "a number too long to read"
