"""The run directory `<runs dir>/<experiment>/<run_id>/`: every path in it, atomic writes, status.json.

Layout:
  config.yaml      the resolved config (every key, defaults filled in, absolute paths)
  job.json         what the in-job runtime executes (command, environment)
  job.sh           the rendered job script, exactly as submitted
  snapshot/        the copy of source_directory the job runs in (its ./outputs → ../outputs)
  outputs/         what the entry script wrote to ./outputs
  logs/            rank-N.out / rank-N.err (the entry script), launcher and scheduler logs
  status.json      state (Slurm's words), exit_code, job_id, backend, nodes, times
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any, Callable

TERMINAL_STATES = frozenset(
    {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE"}
)


def utc_now() -> str:
    """Timestamps in status.json: ISO 8601, UTC, second precision."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def new_run_id(now: _dt.datetime | None = None) -> str:
    """A run id sorts by submit time (to the millisecond) and is unique: `YYYYmmdd-HHMMSS-` then the
    milliseconds and 12 random bits (the run directory's mkdir settles the rare collision)."""
    now = now or _dt.datetime.now()
    return f"{now:%Y%m%d-%H%M%S}-{now.microsecond // 1000:03d}{secrets.token_hex(2)[:3]}"


def _default_mode() -> int:
    """The mode a plain open() would give a new file (mkstemp's files are 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_atomic(path: Path, text: str, mode: int | None = None) -> None:
    """Write a whole file so readers see the old or the new content, never a partial one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, _default_mode() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunDir:
    """Owns every file name of one run (in the spirit of submitit's JobPaths)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).absolute()

    @classmethod
    def create(cls, runs_dir: str | Path, experiment: str) -> "RunDir":
        """Make a new, never-shared run directory (mkdir is the atomic claim)."""
        parent = Path(runs_dir).absolute() / experiment
        parent.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            path = parent / new_run_id()
            try:
                path.mkdir()
            except FileExistsError:
                continue
            run = cls(path)
            for sub in (run.logs, run.outputs):
                sub.mkdir()
            return run
        raise RuntimeError(f"could not create a unique run directory under {parent}")

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
    outputs = property(lambda self: self.path / "outputs")
    logs = property(lambda self: self.path / "logs")
    status_json = property(lambda self: self.path / "status.json")
    submitit_folder = property(lambda self: self.path / ".submitit")
    _lock_path = property(lambda self: self.path / ".status.lock")

    def rank_out(self, rank: int) -> Path:
        return self.logs / f"rank-{rank}.out"

    def rank_err(self, rank: int) -> Path:
        return self.logs / f"rank-{rank}.err"

    def exists(self) -> bool:
        return self.status_json.is_file()

    # ------------------------------------------------------------------ files
    def write_json(self, path: Path, data: Any) -> None:
        write_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")

    def read_job(self) -> dict[str, Any]:
        return json.loads(self.job_json.read_text(encoding="utf-8"))

    def read_status(self) -> dict[str, Any]:
        try:
            return json.loads(self.status_json.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}

    def modify_status(self, change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> dict[str, Any]:
        """Read-modify-write status.json under a file lock (the job, the watcher and the CLI all write it).

        `change` returns the fields to set, or None to leave the file as it is.
        """
        from filelock import FileLock

        with FileLock(str(self._lock_path), timeout=30):
            status = self.read_status()
            fields = change(status)
            if fields:
                status.update(fields)
                self.write_json(self.status_json, status)
        return status

    def update_status(self, **fields: Any) -> dict[str, Any]:
        return self.modify_status(lambda _status: fields)
