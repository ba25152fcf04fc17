"""The local backend's supervisor: `python -m hpc_tf.backends.local_supervisor RUN_DIR`.

It plays slurmctld's part for one job: it starts `bash job.sh`, enforces max_run_duration_seconds
(TIMEOUT), turns SIGTERM into a cancellation (CANCELLED), ends every process the job left behind
(its whole session: children that ignore SIGTERM get SIGKILL after a grace time) and writes the
final state to status.json.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from ..core import transitions
from ..interpreters import shell_exit_code
from ..rundir import RunDir, utc_now
from .local import end_session, session_members

GRACE_SECONDS = 5.0
POLL_SECONDS = 0.2


def supervise(run_dir: str) -> int:
    """Run job.sh to its end, enforce the time limit, handle cancellation, record the final state."""
    run = RunDir(run_dir)
    limit = run.read_job().max_run_duration_seconds
    me = os.getpid()
    with open(run.local_job_log, "ab") as out:
        proc = subprocess.Popen(
            ["bash", str(run.script)],
            cwd=run.path,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
    cause: list[str] = []

    def cancel(_signum: int, _frame: object) -> None:
        if not cause:
            cause.append("CANCELLED")
        end_session(me, signal.SIGTERM, spare=me)

    signal.signal(signal.SIGTERM, cancel)
    signal.signal(signal.SIGINT, cancel)
    deadline = time.monotonic() + limit if limit else None
    returncode = _wait(proc, deadline, cause, me)
    _end_leftovers(me)
    state = cause[0] if cause else ("COMPLETED" if returncode == 0 else "FAILED")
    run.transition(lambda s: transitions.finalised(s, state, shell_exit_code(returncode), utc_now()))
    return 0


def _wait(proc: subprocess.Popen[bytes], deadline: float | None, cause: list[str], me: int) -> int:
    killed_at = None
    while True:
        try:
            return proc.wait(timeout=POLL_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if deadline is not None and now > deadline and not cause:
            cause.append("TIMEOUT")
            end_session(me, signal.SIGTERM, spare=me)
        if cause and killed_at is None:
            killed_at = now
        if killed_at is not None and now - killed_at > GRACE_SECONDS:
            end_session(me, signal.SIGKILL, spare=me)


def _end_leftovers(me: int) -> None:
    """Whatever the job left running (daemonised children, children that ignored SIGTERM) ends with it."""
    if not [pid for pid in session_members(me) if pid != me]:
        return
    end_session(me, signal.SIGTERM, spare=me)
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline and [pid for pid in session_members(me) if pid != me]:
        time.sleep(POLL_SECONDS)
    end_session(me, signal.SIGKILL, spare=me)


if __name__ == "__main__":
    sys.exit(supervise(sys.argv[1]))
