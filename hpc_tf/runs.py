"""Following runs: `Run` (status, wait, logs, cancel, metrics, outputs), finding and listing runs, and
the `Watcher` that asks the scheduler about many runs in one query per poll interval.

Scheduler-friendliness: a status refresh is one query for every run being watched (sacct when
Slurm accounting is on, squeue when it is off), intervals back off while nothing changes, and a
run whose state is final is never asked about again (its `status.json` says `final: true`).
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
import time
from pathlib import Path
from typing import IO, Any, Callable, Mapping, Sequence

from .errors import JobFailedError, RunError, UsageError
from .rundir import TERMINAL_STATES, RunDir, utc_now

# A job the scheduler no longer knows, that recorded no end, is given up on after this long.
FORGOTTEN_AFTER_SECONDS = 120


class Run:
    """One submitted job, found through its run directory; safe to use from any process."""

    def __init__(self, run_dir: RunDir | str | Path) -> None:
        self.dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        if not self.dir.exists():
            raise RunError(f"not a run directory (no status.json): {self.dir.path}")

    @classmethod
    def get(cls, run: str | Path, runs_dir: str | Path | None = None) -> "Run":
        """A run from its directory, its run id or a unique prefix of it (searched under runs_dir)."""
        return find_run(str(run), runs_dir)

    @property
    def run_id(self) -> str:
        return self.dir.run_id

    @property
    def run_dir(self) -> Path:
        return self.dir.path

    def __repr__(self) -> str:
        return f"Run({str(self.dir.path)!r})"

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        """status.json, reconciled with the scheduler until the state is final (one query)."""
        return Watcher().refresh([self])[0]

    def reconcile(self, status: dict[str, Any], seen: Any) -> dict[str, Any]:
        """Merge the scheduler's view into status.json: its final state is the truth; the runtime's
        records add the exit code; a job the scheduler forgot is judged from the run's own records."""
        if seen is None:
            return self._unknown_to_scheduler(status)
        if seen.state in TERMINAL_STATES:
            exit_code = status.get("exit_code")
            if exit_code is None or (seen.state == "COMPLETED") != (exit_code == 0):
                exit_code = seen.exit_code if seen.exit_code is not None else exit_code
            fields: dict[str, Any] = dict(state=seen.state, exit_code=exit_code, final=True,
                                          end_time=status.get("end_time") or utc_now())
            if seen.reason and seen.reason not in ("None", ""):
                fields["reason"] = seen.reason
            return self.dir.update_status(**fields)
        if seen.state != status.get("state") and status.get("state") in (None, "PENDING", "RUNNING"):
            return self.dir.update_status(state=seen.state)
        return status

    def _unknown_to_scheduler(self, status: dict[str, Any]) -> dict[str, Any]:
        if status.get("backend") != "slurm":
            return status
        if status.get("end_time") and status.get("exit_code") is not None:
            state = "COMPLETED" if status["exit_code"] == 0 else "FAILED"
            return self.dir.update_status(state=state, final=True, note="final state from the run directory: "
                                          "the scheduler no longer knows the job")
        if _age_seconds(status.get("submit_time")) > FORGOTTEN_AFTER_SECONDS:
            return self.dir.update_status(state="UNKNOWN", final=True, note=f"the scheduler no longer knows job "
                                          f"{status.get('job_id')} and the run recorded no end")
        return status

    def tasks(self) -> list[dict[str, Any]]:
        """Each task's record (rank, role, index, host, exit code, ...), in rank order."""
        import json

        folder = self.dir.path / "tasks"
        records = [json.loads(p.read_text()) for p in folder.glob("rank-*.json")] if folder.is_dir() else []
        return sorted(records, key=lambda r: r["rank"])

    def cancel(self) -> None:
        from .backends import get_backend

        status = self.dir.read_status()
        if status.get("job_id") and not status.get("final"):
            get_backend(status["backend"]).cancel(status["job_id"])

    # ------------------------------------------------------------------ files
    def stderr_tail(self, lines: int = 20) -> str:
        """The end of the most telling error log: the first failed task's, rank 0's, then the launchers'."""
        status = self.dir.read_status()
        first = (status.get("first_failure") or {}).get("rank")
        candidates = ([self.dir.rank_err(first)] if first is not None else []) + [
            self.dir.rank_err(0), self.dir.logs / "launcher-0.log", *sorted(self.dir.logs.glob("slurm-*.out")),
            self.dir.logs / "local-job.out"]
        for path in candidates:
            if path.is_file() and path.stat().st_size:
                return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def ranks(self) -> list[int]:
        """Ranks that have written logs."""
        return sorted(int(p.stem.split("-")[1]) for p in self.dir.logs.glob("rank-*.out"))

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
        from .metrics import read_metrics

        found = read_metrics(self.dir)
        return {name: found.get(name, [])} if name else found

    # ------------------------------------------------------------------ waiting
    def wait_for_completion(self, show_output: bool = False, raise_on_error: bool = True,
                            out: IO[str] | None = None, err: IO[str] | None = None,
                            timeout: float | None = None, all_ranks: bool = False,
                            progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Wait for the final state, streaming rank 0's stdout/stderr (or every rank's, prefixed).

        Files are read every 0.2 s; the scheduler is asked at most once per (backing-off) interval.
        Raises JobFailedError with the failing task's last stderr lines when raise_on_error is true.
        """
        follower = LogFollower(self.dir, out or sys.stdout, err or sys.stderr, all_ranks)
        watcher = Watcher()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if show_output:
                follower.pump()
            status = watcher.poll([self])[0]
            if progress is not None:
                progress(status)
            if status.get("final"):
                break
            if deadline is not None and time.monotonic() > deadline:
                raise RunError(f"run {self.run_id} not finished after {timeout} s (state {status.get('state')})")
            time.sleep(0.2)
        if show_output:
            follower.pump()
        if raise_on_error and status.get("state") != "COMPLETED":
            raise JobFailedError(str(self.dir.path), status.get("state", "UNKNOWN"), status.get("exit_code"), self.stderr_tail())
        return status


class Watcher:
    """Status of many runs with one scheduler query per backend per poll, backing off while nothing changes.

    `poll()` asks only when its interval has passed (reading status.json otherwise); `refresh()`
    asks now. `queries` counts the scheduler calls made, for tests and benchmarks.
    """

    def __init__(self, first_interval: float = 0.5, max_interval: float = 10.0, factor: float = 1.5) -> None:
        self.first_interval, self.max_interval, self.factor = first_interval, max_interval, factor
        self.interval = first_interval
        self.next_query = 0.0
        self.queries = 0
        self._last: dict[Path, tuple[Any, ...]] = {}

    def poll(self, runs: Sequence[Run]) -> list[dict[str, Any]]:
        if time.monotonic() < self.next_query:
            return [run.dir.read_status() for run in runs]
        statuses = self.refresh(runs)
        changed = self._changed(runs, statuses)
        ending = any(s.get("end_time") and not s.get("final") for s in statuses)
        # The runtime wrote an end, or something moved: ask again soon; otherwise back off.
        self.interval = self.first_interval if changed or ending else min(self.interval * self.factor, self.max_interval)
        self.next_query = time.monotonic() + self.interval
        return statuses

    def refresh(self, runs: Sequence[Run]) -> list[dict[str, Any]]:
        from .backends import get_backend

        statuses = [run.dir.read_status() for run in runs]
        pending: dict[str, list[int]] = {}
        for i, status in enumerate(statuses):
            if not status.get("final") and status.get("job_id"):
                pending.setdefault(status["backend"], []).append(i)
        for backend, indexes in pending.items():
            ids = [statuses[i]["job_id"] for i in indexes]
            seen = get_backend(backend).states(ids)
            self.queries += backend == "slurm"
            for i in indexes:
                statuses[i] = runs[i].reconcile(statuses[i], seen.get(statuses[i]["job_id"]))
        return statuses

    def follow(self, runs: Sequence[Run], timeout: float | None = None) -> list[dict[str, Any]]:
        """Poll until every run is final."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            statuses = self.poll(runs)
            if all(s.get("final") for s in statuses):
                return statuses
            if deadline is not None and time.monotonic() > deadline:
                raise RunError(f"{sum(not s.get('final') for s in statuses)} runs not finished after {timeout} s")
            time.sleep(min(0.2, max(0.0, self.next_query - time.monotonic())) or 0.05)

    def _changed(self, runs: Sequence[Run], statuses: list[dict[str, Any]]) -> bool:
        changed = False
        for run, status in zip(runs, statuses):
            key = (status.get("state"), status.get("final"), status.get("end_time"))
            changed |= self._last.get(run.dir.path) not in (None, key)
            self._last[run.dir.path] = key
        return changed


class LogFollower:
    """Copies what the ranks' log files gain to streams, from where it last stopped (`tail -f`)."""

    def __init__(self, run: RunDir, out: IO[str], err: IO[str], all_ranks: bool = False, rank: int = 0) -> None:
        self.run, self.out, self.err, self.all_ranks, self.rank = run, out, err, all_ranks, rank
        self.offsets: dict[Path, int] = {}
        self.partial: dict[Path, str] = {}

    def pump(self) -> None:
        ranks = sorted(int(p.stem.split("-")[1]) for p in self.run.logs.glob("rank-*.out")) if self.all_ranks else [self.rank]
        for rank in ranks:
            for path, stream in ((self.run.rank_out(rank), self.out), (self.run.rank_err(rank), self.err)):
                self._copy(path, stream, f"[rank {rank}] " if self.all_ranks else "")

    def _copy(self, path: Path, stream: IO[str], prefix: str) -> None:
        try:
            with open(path, "rb") as handle:
                handle.seek(self.offsets.get(path, 0))
                data = handle.read()
        except FileNotFoundError:
            return
        if not data:
            return
        self.offsets[path] = self.offsets.get(path, 0) + len(data)
        text = self.partial.pop(path, "") + data.decode("utf-8", errors="replace")
        if prefix:  # whole lines only, so prefixes from several ranks never cut a line
            text, _, rest = text.rpartition("\n")
            if rest:
                self.partial[path] = rest
            if not text and not _:
                return
            text = "".join(f"{prefix}{line}\n" for line in text.split("\n"))
        stream.write(text)
        stream.flush()


def find_run(text: str, runs_dir: str | Path | None = None) -> Run:
    """A run directory, a run id, or a unique prefix of a run id under the runs directory."""
    from .experiment import runs_dir_from

    path = Path(text)
    if (path / "status.json").is_file():
        return Run(path)
    root = runs_dir_from(runs_dir, os.environ)
    matches = sorted(root.glob(f"*/{text}*/status.json")) if root.is_dir() and "/" not in text and text else []
    if len(matches) == 1:
        return Run(matches[0].parent)
    if len(matches) > 1:
        raise UsageError(f"run {text!r} is ambiguous in {root}: " + ", ".join(m.parent.name for m in matches[:5]))
    raise UsageError(f"no run {text!r} (neither a run directory nor a run id under {root})")


def list_runs(runs_dir: Path, experiment: str | None = None) -> list[Run]:
    """Runs under runs_dir, newest first (run ids start with their submit time)."""
    if not runs_dir.is_dir():
        return []
    pattern = f"{experiment}/*/status.json" if experiment else "*/*/status.json"
    dirs = [p.parent for p in runs_dir.glob(pattern)]
    return [Run(d) for d in sorted(dirs, key=lambda d: d.name, reverse=True)]


def elapsed_seconds(status: Mapping[str, Any]) -> float | None:
    """Start to end (or to now while running)."""
    start = _parse(status.get("start_time"))
    if start is None:
        return None
    end = _parse(status.get("end_time")) or _dt.datetime.now(_dt.timezone.utc)
    return max(0.0, (end - start).total_seconds())


def _parse(stamp: Any) -> _dt.datetime | None:
    try:
        return _dt.datetime.fromisoformat(stamp) if stamp else None
    except ValueError:
        return None


def _age_seconds(stamp: Any) -> float:
    when = _parse(stamp)
    return (_dt.datetime.now(_dt.timezone.utc) - when).total_seconds() if when else 0.0
