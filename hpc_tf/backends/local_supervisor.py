"""The local backend's supervisor: `python -m hpc_tf.backends.local_supervisor RUN_DIR`.

It plays slurmctld's part for one job: it starts `bash job.sh`, enforces max_run_duration_seconds
(TIMEOUT), turns SIGTERM into a cancellation (CANCELLED), ends every process the job left behind
(its whole session: children that ignore SIGTERM get SIGKILL after a grace time) and writes the
final state to status.json.

A run with `timeout` in requeue_on and a time limit gets Slurm's `--signal` and `--requeue` too: the warning
(checkpoint_signal) goes to every task's runtime checkpoint_lead_seconds before the limit, and when rank 0's
runtime asks for the next attempt (`RunDir.requeue_request`, its `scontrol requeue` here) the supervisor starts
job.sh again in the same run directory with a fresh time limit and HPC_TF_RESTART_COUNT one higher, as Slurm
raises SLURM_RESTART_COUNT.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..core import transitions
from ..core.lifecycle import shell_code
from ..core.records import JobRecord
from ..rundir import RunDir, utc_now
from .local import end_session, session_members

GRACE_SECONDS = 5.0
POLL_SECONDS = 0.2


class Supervisor:
    """One job through its attempts. `cause` (TIMEOUT, CANCELLED) ends the job: no attempt starts after it."""

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.job: JobRecord = run.read_job()
        self.me = os.getpid()
        self.cause = ""

    def cancel(self, _signum: int, _frame: object) -> None:
        """Only noted here: the wait loop ends the job, also one whose next attempt was starting just now."""
        if not self.cause:
            self.cause = "CANCELLED"

    def run_job(self) -> int:
        """Attempts until one ends without asking for another; returns the last one's exit status."""
        restart = 0
        returncode = self.attempt(restart)
        while not self.cause and self.run.requeue_request(restart).exists() and not self.run.read_status().final:
            restart += 1
            returncode = self.attempt(restart)
        return returncode

    def attempt(self, restart: int) -> int:
        """Run job.sh once, to its end; whatever it left running ends with it (as Slurm's requeue kills it)."""
        env = dict(os.environ)
        if self.requeues:  # what TaskContext reads on the local backend (SLURM_RESTART_COUNT on Slurm)
            env["HPC_TF_RESTART_COUNT"] = str(restart)
        with open(self.run.local_job_log, "ab") as out:
            proc = subprocess.Popen(
                ["bash", str(self.run.script)],
                cwd=self.run.path,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                process_group=0,
                env=env,
            )
        returncode = self._wait(proc)
        _end_leftovers(self.me)
        return returncode

    @property
    def requeues(self) -> bool:
        """Whether this job gets the warning before its time limit and may be restarted in place."""
        c = self.job.checkpointing
        return "timeout" in c.requeue_on and bool(self.job.max_run_duration_seconds)

    def _wait(self, proc: subprocess.Popen[bytes]) -> int:
        """Until job.sh exits: the warning at limit − lead, SIGTERM at the limit or on a cancel, SIGKILL after grace."""
        limit = self.job.max_run_duration_seconds or 0
        start = time.monotonic()
        deadline = start + limit if limit else None
        warn_at = start + max(limit - self.job.checkpointing.lead_seconds, 0) if self.requeues else None
        warned: set[int] = set()
        killed_at = None
        while True:
            try:
                return proc.wait(timeout=POLL_SECONDS)
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if deadline is not None and now > deadline and not self.cause:
                self.cause = "TIMEOUT"
            if self.cause and killed_at is None:
                killed_at = now
                end_session(self.me, signal.SIGTERM, spare=self.me)
            elif killed_at is None and warn_at is not None and now >= warn_at:
                warned |= warn(self.run, self.job, self.me, warned)
            if killed_at is not None and now - killed_at > GRACE_SECONDS:
                end_session(self.me, signal.SIGKILL, spare=self.me)


def warn(run: RunDir, job: JobRecord, me: int, done: set[int]) -> set[int]:
    """Send the warning to each task's runtime not warned yet; returns those signalled. A runtime is found by its
    task record, written once its entry script runs (its handler for the signal is in place by then): one that
    starts late is warned when it appears, like a step's task that Slurm signals once it runs."""
    sig = getattr(signal, f"SIG{job.checkpointing.signal}")
    sent: set[int] = set()
    for task in run.read_tasks():
        pid = task.pid
        if task.end_time is None and pid and pid not in done and _runtime_of(me, pid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                continue
            sent.add(pid)
    return sent


def _runtime_of(sid: int, pid: int) -> bool:
    """`pid` is a live in-job runtime (`python -m hpc_tf.job`) of session `sid` (pid numbers are reused)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return len(fields) > 3 and fields[0] != "Z" and fields[3] == str(sid) and b"\0hpc_tf.job\0" in cmdline


def supervise(run_dir: str) -> int:
    """Run the job to its end (through its restarts), enforce the time limit, handle cancellation, record the end."""
    sup = Supervisor(RunDir(run_dir))
    signal.signal(signal.SIGTERM, sup.cancel)
    signal.signal(signal.SIGINT, sup.cancel)
    returncode = sup.run_job()
    state = sup.cause or ("COMPLETED" if returncode == 0 else "FAILED")
    sup.run.transition(lambda s: transitions.finalised(s, state, shell_code(returncode), utc_now()))
    return 0


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
