"""Following runs: `Run` (status, wait, logs, cancel, metrics, outputs), finding and listing runs, and
the `Watcher` that asks the scheduler about many runs in one query per poll interval.

Scheduler-friendliness: a status refresh is one query for every run being watched (sacct when
Slurm accounting is on, squeue when it is off), intervals back off while nothing changes and while
the scheduler does not answer, and a run whose state is final is never asked about again (except a
LOST verdict, which the scheduler's next answer about the job revises).
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
import time
from pathlib import Path
from typing import IO, Any, Callable, Sequence

from ..backends import BACKEND_NAMES, Backend, get_backend
from ..core import transitions
from ..core.answers import Answer, NoAnswer
from ..core.records import LOST, RunStatus, TaskRecord
from ..errors import JobFailedError, RunError, UsageError
from ..rundir import RunDir, utc_now
from ..settings import Settings
from .logs import LogFollower

DAMAGED = "DAMAGED"  # shown for a run directory whose status.json cannot be read or used (never written)
# The backends a recorded job can be asked about (`auto` is a choice made at submit time, never recorded)
JOB_BACKENDS = tuple(name for name in BACKEND_NAMES if name != "auto")
TIMESTAMPS = ("submit_time", "start_time", "end_time", "scheduler_unreachable_since")


class Run:
    """One submitted job, found through its run directory; safe to use from any process."""

    def __init__(self, run_dir: RunDir | str | Path, settings: Settings | None = None) -> None:
        self.dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        self.settings = settings or Settings.from_env()
        try:
            present = self.dir.exists()
        except OSError:  # a folder that cannot be searched: kept, and status() says why it cannot be read
            present = True
        if not present:
            raise RunError(f"not a run directory (no status.json): {self.dir.path}")

    @classmethod
    def get(cls, run: str | Path, runs_dir: str | Path | None = None) -> "Run":
        """A run from its directory, its run id or a unique prefix of it (searched under runs_dir)."""
        return find_run(str(run), Settings.from_env(runs_dir=runs_dir))

    @property
    def run_id(self) -> str:
        return self.dir.run_id

    @property
    def run_dir(self) -> Path:
        return self.dir.path

    def __repr__(self) -> str:
        return f"Run({str(self.dir.path)!r})"

    # ------------------------------------------------------------------ status
    def status(self) -> RunStatus:
        """status.json, reconciled with the scheduler until the state is final (one query); a damaged
        status.json is a RunError saying what is wrong with it."""
        status = Watcher(self.settings).refresh([self])[0]
        if status.state == DAMAGED:
            raise RunError(f"run {self.run_id}: {status.message}")
        return status

    def tasks(self) -> list[TaskRecord]:
        """Each task's record (rank, role, index, host, exit code, ...), in rank order."""
        return self.dir.read_tasks()

    def cancel(self) -> bool:
        """Ask the scheduler to end the job; False when nothing was sent: the run already ended (its state is
        final) or has no job yet (see `cancel_refusal`). A status.json that cannot be used is a RunError."""
        status = usable_status(self.dir)
        if cancel_refusal(status):
            return False
        get_backend(status.backend, self.settings).cancel(status.job_id or "")
        return True

    # ------------------------------------------------------------------ files
    def stderr_tail(self, lines: int = 20) -> str:
        """The end of the most telling error log: the first failed task's, rank 0's, then the launchers'."""
        failure = self.dir.read_status().first_failure
        candidates = ([self.dir.rank_err(failure.rank)] if failure is not None else []) + [
            self.dir.rank_err(0),
            self.dir.launcher_log(0),
            *sorted(self.dir.logs.glob("launcher-het0-*.log")),  # a heterogeneous job's: one file per component
            *self.dir.batch_logs(),
            self.dir.local_job_log,
        ]
        for path in candidates:
            if path.is_file() and path.stat().st_size:
                return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def get_file_names(self) -> list[str]:
        """Files under outputs/ (relative paths), like Azure ML's run.get_file_names()."""
        root = self.dir.outputs
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    def download_file(self, name: str, output_file_path: str | Path | None = None) -> Path:
        """Copy one file of outputs/ out of the run directory (or return its path when no target is given)."""
        import shutil

        source = (self.dir.outputs / name).resolve()
        if self.dir.outputs.resolve() not in source.parents or not source.is_file():
            raise RunError(f"no file {name!r} in {self.dir.outputs}")
        if output_file_path is None:
            return source
        target = Path(output_file_path)
        target = target / source.name if target.is_dir() else target
        shutil.copyfile(source, target)
        return target

    def get_metrics(self, name: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """Metrics logged with hpc_tf.log (and scraped from stdout with metric_patterns): name → points."""
        from ..metrics import read_metrics

        found = read_metrics(self.dir)
        return {name: found.get(name, [])} if name else found

    # ------------------------------------------------------------------ waiting
    def wait_for_completion(
        self,
        show_output: bool = False,
        raise_on_error: bool = True,
        out: IO[str] | None = None,
        err: IO[str] | None = None,
        timeout: float | None = None,
        all_ranks: bool = False,
        progress: Callable[[RunStatus], None] | None = None,
    ) -> RunStatus:
        """Wait for the final state, streaming rank 0's stdout/stderr (or every rank's, prefixed).

        Files are read every 0.2 s; the scheduler is asked at most once per (backing-off) interval.
        Raises JobFailedError with the failing task's last stderr lines when raise_on_error is true.
        """
        follower = LogFollower(self.dir, out or sys.stdout, err or sys.stderr, all_ranks)
        watcher = Watcher(self.settings)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if show_output:
                follower.pump()
            status = watcher.poll([self])[0]
            if status.state == DAMAGED:
                raise RunError(f"run {self.run_id}: {status.message}")
            if progress is not None:
                progress(status)
            if status.final:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise RunError(f"run {self.run_id} not finished after {timeout} s (state {status.state})")
            time.sleep(0.2)
        if show_output:
            follower.pump()
        if raise_on_error and status.state != "COMPLETED":
            raise JobFailedError(str(self.dir.path), status.state, status.exit_code, self.stderr_tail())
        return status


class Watcher:
    """Status of many runs with one scheduler query per backend per poll, backing off while nothing changes.

    `poll()` asks only when its interval has passed (reading status.json otherwise); `refresh()`
    asks now. It owns one backend instance per backend name (what a backend learns, such as whether
    Slurm accounting is on, lasts as long as the watcher). `queries` counts the scheduler calls made.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        first_interval: float = 0.5,
        max_interval: float = 10.0,
        factor: float = 1.5,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self.first_interval, self.max_interval, self.factor = first_interval, max_interval, factor
        self.interval = first_interval
        self.next_query = 0.0
        self.queries = 0
        self.unanswered = False
        self._backends: dict[str, Backend] = {}
        self._last: dict[Path, tuple[Any, ...]] = {}

    def backend(self, name: str) -> Backend:
        if name not in self._backends:
            self._backends[name] = get_backend(name, self.settings)
        return self._backends[name]

    def poll(self, runs: Sequence[Run]) -> list[RunStatus]:
        if time.monotonic() < self.next_query:
            return [read_status_or_damaged(run.dir) for run in runs]
        statuses = self.refresh(runs)
        changed = self._changed(runs, statuses)
        ending = any(s.end_time and not s.final for s in statuses)
        # The runtime wrote an end, or something moved: ask again soon; otherwise (or while the
        # scheduler does not answer) back off.
        soon = (changed or ending) and not self.unanswered
        self.interval = self.first_interval if soon else min(self.interval * self.factor, self.max_interval)
        self.next_query = time.monotonic() + self.interval
        return statuses

    def refresh(self, runs: Sequence[Run]) -> list[RunStatus]:
        """Ask each backend once about every run that is not final; merge the answers into status.json."""
        statuses = [read_status_or_damaged(run.dir) for run in runs]
        pending: dict[str, list[int]] = {}
        for i, status in enumerate(statuses):
            if status.job_id and status.state != DAMAGED and (not status.final or status.state == LOST):
                pending.setdefault(status.backend, []).append(i)
        self.unanswered = False
        for name, indexes in pending.items():
            answers = self.backend(name).states([statuses[i].job_id or "" for i in indexes])
            self.queries += self.backend(name).queries_per_call
            for i in indexes:
                answer = answers[statuses[i].job_id or ""]
                self.unanswered |= isinstance(answer, NoAnswer)
                statuses[i] = _merge(runs[i].dir, answer)
        return statuses

    def follow(self, runs: Sequence[Run], timeout: float | None = None) -> list[RunStatus]:
        """Poll until every run is final."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            statuses = self.poll(runs)
            if all(s.final for s in statuses):
                return statuses
            if deadline is not None and time.monotonic() > deadline:
                raise RunError(f"{sum(not s.final for s in statuses)} runs not finished after {timeout} s")
            time.sleep(min(0.2, max(0.0, self.next_query - time.monotonic())) or 0.05)

    def _changed(self, runs: Sequence[Run], statuses: list[RunStatus]) -> bool:
        changed = False
        for run, status in zip(runs, statuses, strict=True):
            key = (status.state, status.final, status.end_time)
            changed |= self._last.get(run.dir.path) not in (None, key)
            self._last[run.dir.path] = key
        return changed


def _merge(run: RunDir, answer: Answer) -> RunStatus:
    """The scheduler's answer merged under the status lock (a run that became final meanwhile stays as it is);
    a status that became unusable meanwhile is left as it is and shown DAMAGED."""

    def observe(status: RunStatus) -> RunStatus:
        problem = status_problem(status)
        if problem:
            raise RunError(f"{run.status_json}: {problem}")
        return transitions.observed(status, answer, utc_now())

    try:
        return run.transition(observe)
    except (RunError, OSError, ValueError, TypeError, OverflowError) as exc:
        return damaged_status(run, str(exc))


def read_status_or_damaged(run: RunDir) -> RunStatus:
    """status.json, or a DAMAGED status saying why it cannot be read or used: one damaged run directory
    affects its own line only."""
    try:
        return usable_status(run)
    except (RunError, OSError) as exc:
        return damaged_status(run, str(exc))


def usable_status(run: RunDir) -> RunStatus:
    """status.json, checked beyond its types (`status_problem`); a RunError naming the file otherwise."""
    status = run.read_status()
    problem = status_problem(status)
    if problem:
        raise RunError(f"{run.status_json}: {problem}")
    return status


def status_problem(status: RunStatus) -> str:
    """What makes a status.json that decodes unusable, or "": a timestamp that is not ISO 8601 with a time
    zone (times are compared), a job to ask about with no backend that can answer, an exit code no process
    can have. hpc_tf writes none of these: such a file was edited or damaged."""
    for name in TIMESTAMPS:
        problem = timestamp_problem(getattr(status, name))
        if problem:
            return f"{name} {problem}"
    asked = status.job_id and (not status.final or status.state == LOST)
    if asked and status.backend not in JOB_BACKENDS:
        known = ", ".join(JOB_BACKENDS)
        return f"backend {status.backend!r} is not one of {known}: job {status.job_id} cannot be asked about"
    if status.exit_code is not None and not -(2**31) <= status.exit_code < 2**31:
        return "exit_code is out of range for an exit status"
    return ""


def timestamp_problem(stamp: str | None) -> str:
    """What is wrong with a recorded timestamp (None: not recorded), or ""."""
    if stamp is None:
        return ""
    shown = repr(stamp) if len(stamp) <= 60 else repr(stamp[:60]) + f"... ({len(stamp)} characters)"
    try:
        parsed = _dt.datetime.fromisoformat(stamp)
        if parsed.utcoffset() is None:
            return f"{shown} has no time zone"
        parsed.astimezone(_dt.timezone.utc)
    except ValueError:
        return f"{shown} is not an ISO 8601 timestamp"
    except OverflowError:
        return f"{shown} is out of range (in UTC)"
    return ""


def cancel_refusal(status: RunStatus) -> str:
    """Why cancelling this run sends nothing (it ended, or has no job yet), or ""."""
    if status.final:
        return f"already ended ({status.state}" + (f" at {status.end_time})" if status.end_time else ")")
    if not status.job_id:
        return f"has no job yet (state {status.state})"
    return ""


def damaged_status(run: RunDir, message: str) -> RunStatus:
    """What listing shows for a run directory whose status cannot be read or written (nothing is written)."""
    return RunStatus(run_id=run.run_id, experiment=run.experiment, state=DAMAGED, final=True, message=message)


def find_run(text: str, settings: Settings) -> Run:
    """A run directory, a run id, or a unique prefix of a run id under the runs directory."""
    if text and _is_run_dir(Path(text)):
        return Run(text, settings)
    root = settings.runs_dir
    matches = sorted(root.glob(f"*/{text}*/status.json")) if text and root.is_dir() and "/" not in text else []
    exact = [m for m in matches if m.parent.name == text]  # trial `S_7` is not ambiguous with `S_70`
    if len(exact) == 1 or len(matches) == 1:
        return Run((exact or matches)[0].parent, settings)
    if len(matches) > 1:
        raise UsageError(f"run {text!r} is ambiguous in {root}: " + ", ".join(m.parent.name for m in matches[:5]))
    if text and _names_a_sweep(text, root):
        raise UsageError(f"{text!r} is a sweep, not a run: python -m hpc_tf sweep status {text}")
    raise UsageError(f"no run {text!r} (neither a run directory nor a run id under {root})")


def _names_a_sweep(text: str, root: Path) -> bool:
    if (Path(text) / "sweep.json").is_file():
        return True
    return root.is_dir() and "/" not in text and any(root.glob(f"*/{text}*/sweep.json"))


def list_runs(settings: Settings, experiment: str | None = None) -> list[Run]:
    """Runs under the runs directory, newest first (run ids start with their submit time); folders that
    are not runs (no status.json) are skipped, damaged runs are listed (see `damaged_status`)."""
    root = settings.runs_dir
    if not root.is_dir():
        return []
    pattern = f"{experiment}/*" if experiment else "*/*"
    dirs = [d for d in root.glob(pattern) if _is_run_dir(d)]
    return [Run(d, settings) for d in sorted(dirs, key=lambda d: d.name, reverse=True)]


def unlisted(settings: Settings, experiment: str | None = None) -> list[str]:
    """Experiment folders whose runs `list_runs` cannot see (they cannot be listed), each with the reason:
    said by `runs`, so that a folder of another user's is not taken for having no runs."""
    root = settings.runs_dir
    folders = [root / experiment] if experiment else (sorted(root.iterdir()) if root.is_dir() else [])
    out = []
    for folder in folders:
        try:
            if folder.is_dir() and not folder.is_symlink():
                with os.scandir(folder):
                    pass
        except OSError as exc:
            out.append(f"cannot list the runs in {folder}: {exc.strerror or exc}")
    return out


def _is_run_dir(path: Path) -> bool:
    """Whether `path` is a run directory; a folder that cannot be searched (another user's, mode 000) counts
    as one, so that it is listed DAMAGED with the reason instead of breaking the listing or vanishing."""
    try:
        return RunDir(path).exists()
    except OSError:
        try:
            return path.is_dir()
        except OSError:
            return False
