"""The run directory `<runs dir>/<experiment>/<run_id>/`: every path in it, durable writes, and the one
module that reads and writes its records (`job.json`, `status.json`, `tasks/rank-N.json`).

Layout:
  config.yaml      the resolved config (every key, defaults filled in, absolute paths)
  job.json         what the in-job runtime executes (command, environment)       core.records.JobRecord
  job.sh           the rendered job script, exactly as submitted
  snapshot/        the copy of source_directory the job runs in (its ./outputs → ../outputs)
  outputs/         what the entry script wrote to ./outputs (rank N's in outputs/rank-N/)
  work/rank-N/     where rank N > 0 runs: links to the snapshot, its own ./outputs
  logs/            rank-N.out / rank-N.err, launcher-N.log, slurm-JOB.out, supervisor.log, local-job.out
  tasks/           rank-N.json (core.records.TaskRecord), lead-exit-N (the chief's exit code in attempt N),
                   tf-config-N.json (rank N's TF_CONFIG while it runs, when too long for the environment)
  metrics/         rank-N.jsonl (hpc_tf.log); a sweep trial's primary.jsonl (its primary metric per interval)
  policy.jsonl     a sweep trial's early-termination decisions, with what they were computed from
  tensorboard/     HPC_TF_TENSORBOARD_DIR
  environment.json the job environment that was used (environments)
  status.json      state (Slurm's words), exit code, job id, times                core.records.RunStatus
Nothing else joins path strings under a run directory.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import os
import stat
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import msgspec

from .core.records import JobRecord, RunStatus, TaskRecord
from .errors import RunError

T = TypeVar("T")
SECRET_MODE = 0o600  # files that may hold environment_variables values: the user's only
# Disk space kept aside in every run directory (`.reserve`) and given back when a record cannot be
# written for lack of space: a job that fills the disk still gets its exit code and final state recorded.
RESERVE_BYTES = 64 * 1024  # ~16 blocks: the status and task records of a run, with room to rewrite them
LOCK_TIMEOUT_SECONDS = 30.0
# The most a record file (status.json, job.json, a task's record, sweep.json) is read of: far more than any holds
MAX_RECORD_BYTES = 64 * 2**20


def utc_now() -> str:
    """Timestamps in records: ISO 8601, UTC, second precision."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def new_run_id(now: _dt.datetime | None = None) -> str:
    """A run id sorts by submit time (to the millisecond) and is unique: `YYYYmmdd-HHMMSS-` then the
    milliseconds and 12 random bits (the run directory's mkdir settles the rare collision)."""
    now = now or _dt.datetime.now()
    return f"{now:%Y%m%d-%H%M%S}-{now.microsecond // 1000:03d}{os.urandom(2).hex()[:3]}"


def _default_mode() -> int:
    """The mode a plain open() would give a new file (mkstemp's files are 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_atomic(path: Path, data: str | bytes, mode: int | None = None, durable: bool = True) -> None:
    """Write a whole file atomically: readers see the old or the new content, never a partial one. Durable
    (the default, for records of what happened): a crash also leaves one of the two (the data is flushed
    to disk before the rename, the rename before returning). Not durable: the job's inputs written before
    it is queued (a crash then is a submission that failed, and the job says so if it ever starts)."""
    fd, tmp = _exclusive_tmp(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp, _default_mode() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)


def _exclusive_tmp(path: Path) -> tuple[int, str]:
    """A new file beside `path` that no other writer has (what tempfile.mkstemp does, without importing tempfile
    and random on every command): a random name, created with O_EXCL. Tasks on other nodes share pids, so the
    name is never derived from one."""
    while True:
        tmp = str(path.parent / f".{path.name}.{os.urandom(6).hex()}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), tmp
        except FileExistsError:
            continue


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def encode(record: msgspec.Struct) -> bytes:
    """A record as indented JSON, the way every record file is written."""
    return msgspec.json.format(msgspec.json.encode(record), indent=2) + b"\n"


def claim_new_dir(parent: Path, what: str) -> Path:
    """A new directory under `parent` named by a fresh id (a run's or a sweep's): mkdir is the atomic claim.

    `parent` (the experiment's folder) must be a real directory: a link planted there would send every new run
    elsewhere, so it is refused (an OSError saying so). The claim is made through a descriptor of the folder
    opened without following links, so the folder checked is the folder written to."""
    parent.parent.mkdir(parents=True, exist_ok=True)
    try:
        parent.mkdir()
    except FileExistsError:
        pass
    fd = _open_real_dir(parent)
    try:
        for _ in range(100):
            name = new_run_id()
            try:
                os.mkdir(name, dir_fd=fd)
            except FileExistsError:
                continue
            return parent / name
    finally:
        os.close(fd)
    raise RunError(f"could not create a unique {what} directory under {parent}")


def _open_real_dir(folder: Path) -> int:
    """A descriptor of `folder`, which must be a directory and not a symbolic link."""
    try:
        return os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        if not folder.is_symlink():
            raise
        target = os.readlink(folder)
        raise OSError(
            exc.errno or errno.ELOOP,
            f"{folder} is a symbolic link (to {target}): runs are only created in a real directory "
            "(remove the link, or give its target as --runs-dir)",
        ) from None


class RunDir:
    """Owns every file name of one run (in the spirit of submitit's JobPaths), and its records."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).absolute()

    @classmethod
    def create(cls, runs_dir: str | Path, experiment: str) -> "RunDir":
        """Make a new, never-shared run directory (mkdir is the atomic claim)."""
        run = cls(claim_new_dir(Path(runs_dir).absolute() / experiment, "run"))
        try:
            write_atomic(run.reserve, b"\0" * RESERVE_BYTES, durable=False)
        except OSError:
            run.reserve.unlink(missing_ok=True)
            raise
        return run

    # ------------------------------------------------------------------ paths
    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def experiment(self) -> str:
        return self.path.parent.name

    config_yaml = property(lambda self: self.path / "config.yaml")
    job_json = property(lambda self: self.path / "job.json")
    script = property(lambda self: self.path / "job.sh")
    snapshot = property(lambda self: self.path / "snapshot")
    snapshot_outputs = property(lambda self: self.path / "snapshot" / "outputs")  # a link to ../outputs
    outputs = property(lambda self: self.path / "outputs")
    logs = property(lambda self: self.path / "logs")
    tasks_dir = property(lambda self: self.path / "tasks")
    metrics_dir = property(lambda self: self.path / "metrics")
    tensorboard = property(lambda self: self.path / "tensorboard")
    environment_json = property(lambda self: self.path / "environment.json")
    status_json = property(lambda self: self.path / "status.json")
    submitit_folder = property(lambda self: self.path / ".submitit")
    early_stop_file = property(lambda self: self.tasks_dir / "early-stop")  # a sweep's policy stopped the trial
    primary_metric_file = property(lambda self: self.metrics_dir / "primary.jsonl")  # a trial's primary metric
    policy_log = property(lambda self: self.path / "policy.jsonl")  # every policy decision, with its inputs
    supervisor_log = property(lambda self: self.logs / "supervisor.log")
    local_job_log = property(lambda self: self.logs / "local-job.out")
    _lock_path = property(lambda self: self.path / ".status.lock")
    reserve = property(lambda self: self.path / ".reserve")

    def lead_exit(self, attempt: int) -> Path:
        """The chief's exit code, written when it ends: the other tasks stop theirs (one file per attempt, so a
        restarted job's servers are not stopped by the previous attempt's chief)."""
        return self.tasks_dir / f"lead-exit-{attempt}"

    def requeue_request(self, attempt: int) -> Path:
        """Written by rank 0's runtime on the local backend when its decision allows another attempt (the local
        backend's `scontrol requeue`); the supervisor reads this, not status.json's REQUEUED, which a watcher's
        RUNNING may already have replaced."""
        return self.tasks_dir / f"requeue-request-{attempt}"

    def checkpoint_request(self, attempt: int) -> Path:
        """Written by rank 0's runtime on Slurm's warning signal: the script should save (one file per attempt)."""
        return self.tasks_dir / f"checkpoint-request-{attempt}"

    def tf_config_file(self, rank: int) -> Path:
        """Rank N's TF_CONFIG when it is too long for one environment string (core.envsize): written by its runtime
        before the entry script starts, read by the script's interpreter (HPC_TF_TF_CONFIG_FILE), removed at its end."""
        return self.tasks_dir / f"tf-config-{rank}.json"

    def rank_out(self, rank: int) -> Path:
        return self.logs / f"rank-{rank}.out"

    def rank_err(self, rank: int) -> Path:
        return self.logs / f"rank-{rank}.err"

    def launcher_log(self, rank: int) -> Path:
        return self.logs / f"launcher-{rank}.log"

    def batch_logs(self) -> list[Path]:
        """Slurm's batch logs (logs/slurm-JOB.out), one per job id the run had."""
        return sorted(self.logs.glob("slurm-*.out"))

    def logged_ranks(self) -> list[int]:
        """Ranks that have written logs, in rank order."""
        found = (p.stem.split("-", 1)[1] for p in self.logs.glob("rank-*.out"))
        return sorted(int(tail) for tail in found if tail.isascii() and tail.isdigit())

    def task_record_path(self, rank: int) -> Path:
        return self.tasks_dir / f"rank-{rank}.json"

    def metrics_file(self, rank: int) -> Path:
        return self.metrics_dir / f"rank-{rank}.jsonl"

    def rank_outputs(self, rank: int) -> Path:
        """Where a rank's ./outputs lands: rank 0's at the top of outputs/, rank N's in outputs/rank-N/."""
        return self.outputs if rank == 0 else self.outputs / f"rank-{rank}"

    def work_dir(self, rank: int) -> Path:
        return self.path / "work" / f"rank-{rank}"

    def exists(self) -> bool:
        """A run directory has a status.json entry (damaged or not: a damaged one is reported, not hidden)."""
        return self.status_json.exists() or self.status_json.is_symlink()

    # ------------------------------------------------------------------ records
    def write_record(self, path: Path, record: msgspec.Struct, mode: int | None = None, durable: bool = True) -> None:
        """Write a record; on a full disk, give back the run's reserved space and write it anyway."""
        try:
            write_atomic(path, encode(record), mode, durable)
        except OSError as exc:
            if exc.errno != errno.ENOSPC or not self.reserve.exists():
                raise
            self.reserve.unlink(missing_ok=True)
            write_atomic(path, encode(record), mode, durable)

    def read_job(self) -> JobRecord:
        return _read(self.job_json, JobRecord)

    def write_job(self, job: JobRecord) -> None:
        """job.json is an input written before the job is queued (see write_atomic's `durable`)."""
        self.write_record(self.job_json, job, SECRET_MODE, durable=False)

    def read_status(self) -> RunStatus:
        """status.json; a run whose status is not written yet reads as a fresh PENDING record."""
        try:
            present = self.exists()
        except OSError as exc:  # the folder cannot be searched (another user's, mode 000)
            raise RunError(f"cannot read {self.status_json}: {exc.strerror or exc}") from None
        if not present:
            return RunStatus(run_id=self.run_id, experiment=self.experiment)
        return _read(self.status_json, RunStatus)

    def transition(self, change: Callable[[RunStatus], RunStatus]) -> RunStatus:
        """Apply one transition (core.transitions) to status.json under a file lock, to the status as it is
        on disk now: the job, the supervisor, the watcher and the CLI all write it, never from a stale read."""
        with _locked(self._lock_path, LOCK_TIMEOUT_SECONDS):
            status = self.read_status()
            new = change(status)
            if new != status or not self.status_json.exists():
                self.write_record(self.status_json, new)
        return new

    def read_tasks(self) -> list[TaskRecord]:
        """Every task's record, in rank order (records being written are skipped)."""
        records = []
        for path in self.tasks_dir.glob("rank-*.json") if self.tasks_dir.is_dir() else []:
            try:
                records.append(_read(path, TaskRecord))
            except RunError:
                continue
        return sorted(records, key=lambda r: r.rank)

    def write_task(self, record: TaskRecord) -> None:
        self.tasks_dir.mkdir(exist_ok=True)
        self.write_record(self.task_record_path(record.rank), record)


@contextlib.contextmanager
def _locked(path: Path, timeout: float) -> Iterator[None]:
    """An exclusive `flock` on `path` (released when the file is closed, also if the process dies), taken
    within `timeout` seconds or a RunError naming the lock file."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RunError(f"{path} stayed locked for {timeout:g} s") from None
                time.sleep(0.01)
        yield
    finally:
        os.close(fd)


def _read(path: Path, kind: type[T]) -> T:
    """A record file as its struct; a damaged or unreadable file is a RunError naming it and what is wrong.

    Only a regular file is read (a FIFO would block the reader forever, a device never end), and at most
    MAX_RECORD_BYTES of it; a document nested too deep for the decoder is damaged like any other."""
    data = read_bounded(path)
    try:
        return msgspec.json.decode(data, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        what = "empty" if not data.strip() else f"damaged ({exc})"
        raise RunError(f"{path} is {what}") from None
    except RecursionError:
        raise RunError(f"{path} is damaged (nested too deeply to read)") from None


def read_bounded(path: Path) -> bytes:
    """A record file's bytes (at most MAX_RECORD_BYTES, of a regular file only); a RunError naming it otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        what = "a link to nothing" if path.is_symlink() else "missing"
        raise RunError(f"{path} is {what}") from None
    except OSError as exc:
        raise RunError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise RunError(f"{path} is not a regular file ({file_kind(mode)})")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(MAX_RECORD_BYTES + 1)
    except OSError as exc:
        raise RunError(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_RECORD_BYTES:
        raise RunError(f"{path} is damaged (over {MAX_RECORD_BYTES // 2**20} MiB, far more than a record holds)")
    return data


def file_kind(mode: int) -> str:
    """What a file that is not a regular one is, in words (for messages)."""
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "a device")
