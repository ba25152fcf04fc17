"""Rank 0's side of a run that may outlive its time limit (requeue_on).

hpc_tf's per-task runtime owns Slurm's warning signal (the job runs `python -m hpc_tf.job`, never submitit's
in-job runner, so nothing else handles it). The entry script is started with that signal ignored, so a script that
knows nothing of it is not killed; it is told through a file it can poll (`hpc_tf.checkpoint.requested()`). On the
signal, rank 0 decides (core.requeue) and writes the request; once its script has exited after saving, it asks Slurm
to requeue the job (`A_i` for a sweep trial) through the backend's client, and records the attempt REQUEUED only once
Slurm took the request. A refused or unanswered request (slurmctld down) is asked again until the warning's lead time
is nearly spent; then the run ends FAILED with what Slurm said.

On the local backend its supervisor plays Slurm's part: it sends the warning only for the time limit (so its cause is
`timeout`, no `scontrol` is asked), and a requeue is asked of it with a file (`RunDir.requeue_request`).
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Callable, Mapping

from ..backends.slurm import SlurmClient
from ..checkpoint import PROGRESS_FILE
from ..core import transitions
from ..core.lifecycle import REQUEUE_EXIT_CODE
from ..core.records import JobRecord, RunStatus
from ..core.requeue import (
    RequeueDecision,
    cause_of_unannounced_end,
    decide_requeue,
    unhealthy_nodes,
    warning_cause,
)
from ..rundir import RunDir, utc_now, write_atomic
from .context import TaskContext

QUERY_SECONDS = 5.0  # one scontrol query (show job, show node)
REQUEUE_CALL_SECONDS = 10.0  # one `scontrol requeue` (slurmctld's MessageTimeout is 10 s by default)
RETRY_SECONDS = 2.0  # between two requeue requests Slurm did not take
LIMIT_MARGIN_SECONDS = 10.0  # the requests stop this long before the warning's lead time is spent


def checkpoint_signal(job: JobRecord) -> int:
    return int(getattr(signal, f"SIG{job.checkpointing.signal}"))


def requeue_id(env: Mapping[str, str]) -> str:
    """The job Slurm should requeue: the array task alone for a sweep trial, else the job."""
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID", "")


def checkpoint_environment(run: RunDir, job: JobRecord, restart_count: int) -> dict[str, str]:
    """What the entry script is told: where to checkpoint, which attempt this is, the file that asks it to save."""
    folder = run.path / job.checkpointing.checkpoint_dir
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "HPC_TF_CHECKPOINT_DIR": str(folder),
        "HPC_TF_RESTART_COUNT": str(restart_count),
        "HPC_TF_CHECKPOINT_EVERY": str(job.checkpointing.every),
        "HPC_TF_CHECKPOINT_REQUEST": str(run.checkpoint_request(restart_count)),
    }


def read_request(path: Path) -> str | None:
    """The cause a checkpoint request recorded (None: no request, or unreadable)."""
    try:
        return str(json.loads(path.read_text())["cause"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class Requeuer:
    """Decides on the warning signal (rank 0), and requeues once the script has saved and exited."""

    def __init__(
        self, run: RunDir, job: JobRecord, ctx: TaskContext, env: Mapping[str, str], client: SlurmClient | None = None
    ) -> None:
        self.run, self.job, self.ctx = run, job, ctx
        self.job_id = requeue_id(env)
        self.client = client or SlurmClient(QUERY_SECONDS)
        self.cause = ""  # set by the warning
        self.warned_at = 0.0  # time.monotonic() of the warning
        self.requeued = False  # Slurm (or the local supervisor) took this attempt's request for the next one

    def on_signal(self, signum: int) -> None:
        """The warning: write the request every rank's script sees (once). A SIGTERM is not ours to act on:
        `scancel` sends one too, and a preemption is requeued by Slurm itself (PreemptMode=REQUEUE, --requeue)."""
        if self.cause or signum != checkpoint_signal(self.job):
            return
        lead = self.job.checkpointing.lead_seconds
        self.warned_at = time.monotonic()
        self.cause = "timeout" if self.ctx.local else warning_cause(self.client.job_fields(self.job_id), lead)
        self.run.tasks_dir.mkdir(exist_ok=True)
        request = {"cause": self.cause, "time": utc_now()}
        write_atomic(self.run.checkpoint_request(self.ctx.restart_count), json.dumps(request))

    def after_exit(self, code: int, before_requeue: Callable[[], None] | None = None) -> bool:
        """After the script's exit. A script that saved and exited with REQUEUE_EXIT_CODE (75,
        `hpc_tf.checkpoint.exit_for_requeue()`) is requeued when `decide_requeue` allows it and Slurm takes the
        request; otherwise the run ends with 75 and the reason in `message`. Any other exit is the script's own end.
        Returns whether the next attempt was asked for and taken."""
        if not self.cause or code != REQUEUE_EXIT_CODE:
            return False
        if before_requeue is not None:  # the other tasks end before the attempt's end is recorded and Slurm kills them
            before_requeue()
        decision = self._decision(self.cause)
        if not decision.allowed:
            self._record(self.cause, decision.reason, False, "not requeued")
            return False
        # Slurm's requeue kills this job (SIGTERM, then SIGKILL after KillWait): the answer is recorded first.
        with _sigterm_held():
            refused = self._ask_for_next_attempt()
            if refused is None:
                self._record(self.cause, decision.reason, True, "not requeued")
                self.requeued = True
            else:
                self._record(self.cause, refused, False, "not requeued")
        return self.requeued

    def _ask_for_next_attempt(self) -> str | None:
        """None once the next attempt was asked for and taken; else what Slurm last said. The local supervisor is
        asked with a file; Slurm is asked again while the warning's lead time lasts (a controller may be restarting)."""
        if self.ctx.local:
            write_atomic(self.run.requeue_request(self.ctx.restart_count), json.dumps({"time": utc_now()}))
            return None
        lead = self.job.checkpointing.lead_seconds
        deadline = (self.warned_at or time.monotonic()) + max(lead - LIMIT_MARGIN_SECONDS, RETRY_SECONDS)
        tries, said = 0, ""
        while True:
            left = deadline - time.monotonic()
            tries += 1
            said = self.client.requeue(self.job_id, max(1.0, min(REQUEUE_CALL_SECONDS, left))) or ""
            if not said or self._taken():
                return None
            if time.monotonic() + RETRY_SECONDS >= deadline:
                return f"Slurm did not take the requeue ({tries} requests in {lead:g} s of warning): {said}"
            time.sleep(RETRY_SECONDS)

    def _taken(self) -> bool:
        """Whether Slurm did requeue the job though its answer was lost (a request timed out after it arrived):
        its restart count is past this attempt's."""
        restarts = self.client.job_fields(self.job_id).get("Restarts", "")
        return restarts.isdigit() and int(restarts) > self.ctx.restart_count

    def gate(self) -> str | None:
        """At the start of a restart Slurm made after an attempt that recorded no end (a node failed, an operator
        requeued it, a preemption's grace ran out, a save was killed): record that attempt's cause and whether it may
        go on. Returns the refusal (the script is then not started), or None."""
        status = self.run.read_status()
        if self.ctx.restart_count == 0 or not status.attempts or status.attempts[-1].end is not None:
            return None
        last = status.attempts[-1]
        if last.n >= self.ctx.restart_count:
            return None
        states = {} if self.ctx.local else self.client.node_states(last.nodes)
        cause = cause_of_unannounced_end(read_request(self.run.checkpoint_request(last.n)), unhealthy_nodes(states))
        decision = self._decision(cause)
        self._record(cause, decision.reason, decision.allowed, "not restarted", known_end=False)
        return None if decision.allowed else self.run.read_status().message

    def _decision(self, cause: str) -> RequeueDecision:
        """What core.requeue decides for the current attempt, from the past attempts and the checkpoint's progress."""
        status = self.run.read_status()
        past = [a.cause for a in status.attempts[:-1]]
        steps = [a.checkpoint_step for a in status.attempts[:-1]] + [self._progress()]
        c = self.job.checkpointing
        return decide_requeue(cause, c.requeue_on, c.max_restarts, past, steps)

    def _progress(self) -> int | None:
        return checkpoint_progress(self.run.path / self.job.checkpointing.checkpoint_dir)

    def _record(self, cause: str, reason: str, requeued: bool, refused: str, known_end: bool = True) -> None:
        """Close the current attempt with its cause, checkpoint step and what was decided (REQUEUED or not)."""
        step = self._progress()

        def ended(s: RunStatus) -> RunStatus:
            now = utc_now() if known_end else ""
            return transitions.attempt_ended(s, cause, step, reason, requeued, now, refused)

        self.run.transition(ended)


class _sigterm_held:
    """SIGTERM is held (blocked, then delivered) while the requeue is asked for and its answer recorded."""

    def __enter__(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})

    def __exit__(self, *_: object) -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def checkpoint_progress(folder: Path) -> int | None:
    """How far the newest checkpoint is: the step a helper recorded (`hpc_tf.checkpoint.saved`), else the newest
    file's modification time in ns (any save counts as progress); None when nothing was ever saved."""
    try:
        return int(json.loads((folder / PROGRESS_FILE).read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    times = [p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
    return max(times) if times else None


def ignore_in_child(job: JobRecord) -> tuple[int, ...]:
    """Signals the entry script starts with ignored: the warning, so a script that does not handle it lives on."""
    return (checkpoint_signal(job),) if job.checkpointing.requeue_on else ()


OTHERS_STOP_SECONDS = 20.0


def wait_for_other_tasks(run: RunDir, ntasks: int) -> None:
    """Until every other task of this attempt has recorded its end (bounded: a requeue ends them anyway)."""
    deadline = time.monotonic() + OTHERS_STOP_SECONDS
    while time.monotonic() < deadline:
        ended = {r.rank for r in run.read_tasks() if r.end_time is not None}
        if ended >= set(range(1, ntasks)):
            return
        time.sleep(0.1)
