"""Runs that outlive their time limit (issue 11), as the in-job side sees them: what a warning signal means, and
whether another attempt is allowed. Pure: times and counts are passed in. (The Slurm options that ask for the
warning and the requeue are core.slurm_options', every job's; job.json's part is core.plan.checkpointing.)

Causes are hpc_tf's words: `timeout` (the warning came within the lead time of the limit), `preemption` (a
warning or a SIGTERM long before it: a higher-priority job, or an operator), `node_failure` (Slurm restarted
the job after a node failed). `max_restarts` caps all causes together (an int) or each cause (a mapping);
a run also stops after NO_PROGRESS_ATTEMPTS attempts in a row whose newest checkpoint did not advance.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Mapping, Sequence

import msgspec

CAUSES = ("preemption", "timeout", "node_failure")
NO_PROGRESS_ATTEMPTS = 2
# Slurm may send the --signal warning up to 60 s early, and checks limits about every 30 s (so up to ~30 s late):
# a warning with less than lead + this much left is the time limit's.
TIMEOUT_SLACK_SECONDS = 90


class RequeueDecision(msgspec.Struct, frozen=True):
    """Whether a run may take another attempt, and why (recorded either way)."""

    allowed: bool
    reason: str


def cause_of_warning(seconds_left: float | None, lead_seconds: int, preempted: bool = False) -> str:
    """A warning signal with the time limit close is the limit's; earlier, or without a limit, a preemption's.
    Slurm sets the job's PreemptTime when it preempts it (and, with preempt_send_user_signal, sends the warning
    then): that settles it whatever the time left."""
    if preempted:
        return "preemption"
    if seconds_left is not None and seconds_left <= lead_seconds + TIMEOUT_SLACK_SECONDS:
        return "timeout"
    return "preemption"


def slurm_seconds(text: str) -> float | None:
    """Slurm's `[D-]H:MM:SS`, `MM:SS` or `SS` as seconds; UNLIMITED, INVALID or nothing as None."""
    days, _, clock = text.strip().rpartition("-")
    parts = clock.split(":")
    if not all(p.isdigit() for p in parts) or len(parts) > 3 or (days and not days.isdigit()):
        return None
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return seconds + int(days or 0) * 86400


def warning_cause(job_fields: Mapping[str, str], lead_seconds: int) -> str:
    """The cause of a warning signal from the job's `scontrol show job -o` fields ({} when Slurm did not answer):
    PreemptTime set → preemption; else the time left (TimeLimit − RunTime) says whether it is the limit's."""
    preempted = job_fields.get("PreemptTime", "None") not in ("", "None", "Unknown")
    limit, ran = slurm_seconds(job_fields.get("TimeLimit", "")), slurm_seconds(job_fields.get("RunTime", ""))
    left = None if limit is None or ran is None else limit - ran
    return cause_of_warning(left, lead_seconds, preempted)


UNHEALTHY_NODE_STATES = ("DOWN", "DRAIN", "FAIL", "NOT_RESPONDING", "POWER_DOWN", "REBOOT")


def unhealthy_nodes(node_states: Mapping[str, str]) -> list[str]:
    """Nodes whose `scontrol show node` State (`IDLE`, `DOWN+DRAIN`, `IDLE*`...) says they failed or were taken
    out; `*` is Slurm's "not responding"."""
    return [
        node
        for node, state in node_states.items()
        if state.endswith("*") or any(word in state.upper().split("+") for word in UNHEALTHY_NODE_STATES)
    ]


def cause_of_unannounced_end(request_cause: str | None, down_nodes: Sequence[str]) -> str:
    """Why an attempt that recorded no end was restarted by Slurm: the warning it was handling (killed while saving),
    else a node failure when one of its nodes is down, else a requeue nobody announced (an operator's `scontrol
    requeue`, a preemption without notice), counted as a preemption."""
    if request_cause:
        return request_cause
    return "node_failure" if down_nodes else "preemption"


def restarts_by_cause(causes: Sequence[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for cause in causes:
        counts[cause] = counts.get(cause, 0) + 1
    return counts


def decide_requeue(
    cause: str,
    requeue_on: Sequence[str],
    max_restarts: int | Mapping[str, int],
    past_causes: Sequence[str],
    checkpoint_steps: Sequence[int | None],
) -> RequeueDecision:
    """May the run take another attempt after an attempt ended by `cause`?

    `past_causes`: why each earlier attempt ended (restarts so far); `checkpoint_steps`: the newest checkpoint's
    step at the end of each attempt, this one last (None: no checkpoint)."""
    if cause not in requeue_on:
        return RequeueDecision(False, f"{cause} is not in requeue_on ({', '.join(requeue_on) or 'empty'})")
    counts = restarts_by_cause(past_causes)
    if isinstance(max_restarts, int):
        if len(past_causes) >= max_restarts:
            return RequeueDecision(False, f"max_restarts reached ({len(past_causes)} of {max_restarts})")
    elif counts.get(cause, 0) >= max_restarts.get(cause, 0):
        return RequeueDecision(
            False, f"max_restarts.{cause} reached ({counts.get(cause, 0)} of {max_restarts.get(cause, 0)})"
        )
    if _no_progress(checkpoint_steps):
        return RequeueDecision(
            False, f"no progress: the last {NO_PROGRESS_ATTEMPTS} attempts ended without a newer checkpoint"
        )
    return RequeueDecision(True, f"requeued after {cause} (restart {len(past_causes) + 1})")


def _no_progress(steps: Sequence[int | None]) -> bool:
    """The last NO_PROGRESS_ATTEMPTS attempts each ended at a checkpoint no newer than the one before them."""
    if len(steps) < NO_PROGRESS_ATTEMPTS + 1:
        return False
    tail = [-1 if step is None else step for step in steps[-(NO_PROGRESS_ATTEMPTS + 1) :]]
    return all(later <= earlier for earlier, later in pairwise(tail))
