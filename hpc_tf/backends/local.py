"""The local backend: runs the job on this machine under a small detached supervisor
(`local_supervisor`), which plays slurmctld's part for one job.

The supervisor leads its own session (its pid is the job id's number); every process of the job
stays in that session, so the job can always be found and ended as a whole — also when the
supervisor itself was killed (then `states` reports NODE_FAIL and ends what is left of the job).
A run that is restarted in place (requeue_on: timeout) stays one job: RUNNING while the supervisor lives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from .._location import package_root
from ..core.answers import Answer, JobState
from ..errors import SubmissionError
from ..rundir import RunDir

PREFIX = "local-"


class LocalBackend:
    name = "local"
    queries_per_call = 0

    def submit(self, run: RunDir, script: str) -> str:
        try:
            with open(run.supervisor_log, "ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "hpc_tf.backends.local_supervisor", str(run.path)],
                    cwd=run.path,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=_env_with_package_path(),
                )
        except OSError as exc:
            raise SubmissionError(
                f"cannot start the local supervisor: {exc.strerror or exc}", run_dir=str(run.path)
            ) from None
        return f"{PREFIX}{proc.pid}"

    def states(self, job_ids: Sequence[str]) -> dict[str, Answer]:
        """RUNNING while the supervisor lives; a supervisor gone without a final status lost its job (NODE_FAIL):
        what is left of the job is ended, so no job ever runs on behind a final state."""
        out: dict[str, Answer] = {}
        for job_id in job_ids:
            pid = _pid(job_id)
            if pid is not None and supervisor_alive(pid):
                out[job_id] = JobState("RUNNING")
            else:
                if pid is not None:
                    end_session(pid, signal.SIGKILL)
                out[job_id] = JobState("NODE_FAIL", None, "the local supervisor process is gone")
        return out

    def cancel(self, job_id: str) -> None:
        pid = _pid(job_id)
        if pid is not None and supervisor_alive(pid):
            os.kill(pid, signal.SIGTERM)


def _env_with_package_path() -> dict[str, str]:
    """Let the supervisor import this very hpc_tf, also from a source checkout."""
    env = dict(os.environ)
    root = package_root()
    if root:
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _pid(job_id: str) -> int | None:
    return int(job_id[len(PREFIX) :]) if job_id.startswith(PREFIX) and job_id[len(PREFIX) :].isdigit() else None


def supervisor_alive(pid: int) -> bool:
    """Alive and really our supervisor (pid numbers are reused); zombies count as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state != "Z" and b"hpc_tf.backends.local_supervisor" in cmdline


def session_members(sid: int) -> list[int]:
    """Processes of session `sid` (the supervisor's), found in /proc; the session outlives its leader."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if len(fields) > 3 and fields[3] == str(sid) and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def end_session(sid: int, sig: int, spare: int | None = None) -> int:
    """Signal every process of session `sid` but `spare`; returns how many were signalled. A session whose
    number now leads a new session (its leader `sid` is alive and not ours) is left alone."""
    members = session_members(sid)
    if sid in members and sid != spare:
        return 0  # pid reused: a live process leads this session and it is not our supervisor's job
    count = 0
    for pid in members:
        if pid != spare:
            try:
                os.kill(pid, sig)
                count += 1
            except ProcessLookupError:
                pass
    return count
