"""The local backend: runs the job on this machine under a small detached supervisor.

The supervisor plays slurmctld's part for one job: it starts `bash job.sh` in its own
process group, enforces max_run_duration_seconds (TIMEOUT), turns SIGTERM into a
cancellation (CANCELLED), and writes the final state to status.json even when the job
was killed. `python -m hpc_tf.backends.local RUN_DIR` is the supervisor.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from ..rundir import RunDir, utc_now
from ..runtime import shell_exit_code
from .base import JobState

GRACE_SECONDS = 5.0
PREFIX = "local-"


class LocalBackend:
    name = "local"

    def submit(self, run: RunDir, script: str) -> str:
        log = open(run.logs / "supervisor.log", "ab")
        with log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "hpc_tf.backends.local", str(run.path)],
                cwd=run.path, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env=_env_with_package_path(),
            )
        return f"{PREFIX}{proc.pid}"

    def states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """A local job whose supervisor is gone without a final status was lost (NODE_FAIL)."""
        out = {}
        for job_id in job_ids:
            pid = _pid(job_id)
            if pid is not None and not _supervisor_alive(pid):
                out[job_id] = JobState("NODE_FAIL", None, "the local supervisor process is gone")
        return out

    def cancel(self, job_id: str) -> None:
        pid = _pid(job_id)
        if pid is not None and _supervisor_alive(pid):
            os.kill(pid, signal.SIGTERM)


def _env_with_package_path() -> dict[str, str]:
    """Let the supervisor import this very hpc_tf, also from a source checkout."""
    from . import package_root

    env = dict(os.environ)
    root = package_root()
    if root:
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _pid(job_id: str) -> int | None:
    return int(job_id[len(PREFIX):]) if job_id.startswith(PREFIX) and job_id[len(PREFIX):].isdigit() else None


def _supervisor_alive(pid: int) -> bool:
    """Alive and really our supervisor (pid numbers are reused); zombies count as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state != "Z" and b"hpc_tf.backends.local" in cmdline


def supervise(run_dir: str) -> int:
    """Run job.sh to its end, enforce the time limit, handle cancellation, record the final state."""
    run = RunDir(run_dir)
    limit = run.read_job().get("max_run_duration_seconds")
    with open(run.logs / "local-job.out", "ab") as out:
        proc = subprocess.Popen(["bash", str(run.script)], cwd=run.path, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    cause: list[str] = []

    def cancel(_signum: int, _frame: object) -> None:
        if not cause:
            cause.append("CANCELLED")
        _killpg(proc.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, cancel)
    signal.signal(signal.SIGINT, cancel)
    deadline = time.monotonic() + limit if limit else None
    returncode = _wait(proc, deadline, cause)
    status = run.read_status()
    state = cause[0] if cause else ("COMPLETED" if returncode == 0 else "FAILED")
    exit_code = status.get("exit_code") if status.get("exit_code") is not None else shell_exit_code(returncode)
    run.update_status(state=state, exit_code=exit_code, end_time=status.get("end_time") or utc_now(), final=True)
    return 0


def _wait(proc: subprocess.Popen, deadline: float | None, cause: list[str]) -> int:
    killed_at = None
    while True:
        try:
            return proc.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if deadline is not None and now > deadline and not cause:
            cause.append("TIMEOUT")
            _killpg(proc.pid, signal.SIGTERM)
        if cause and killed_at is None:
            killed_at = now
        if killed_at is not None and now - killed_at > GRACE_SECONDS:
            _killpg(proc.pid, signal.SIGKILL)


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    sys.exit(supervise(sys.argv[1]))
