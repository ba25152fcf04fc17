"""`core.transitions`: every change to status.json is a pure (old status, event) → new status function.

Each test states the whole expected record (the input with named changes), so a transition that
touches a field it should not is caught as well as one that misses a field.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import pytest

from hpc_tf.core import transitions
from hpc_tf.core.answers import Answer, JobState, NoAnswer, NotKnown
from hpc_tf.core.records import LOST, TERMINAL_STATES, FirstFailure, RunStatus
from hpc_tf.core.transitions import FORGOTTEN_AFTER_SECONDS, observed
from hpc_tf.job.context import TaskContext

replace = msgspec.structs.replace

SUBMIT = "2026-11-28T02:18:44+00:00"
START = "2026-11-28T02:18:50+00:00"
END = "2026-11-28T02:20:00+00:00"
NOW = "2026-11-28T02:30:00+00:00"  # 1276 s after SUBMIT: well past FORGOTTEN_AFTER_SECONDS
LATER = "2026-11-28T02:31:00+00:00"
YOUNG_NOW = "2026-11-28T02:19:44+00:00"  # 60 s after SUBMIT
EDGE_NOW = "2026-11-28T02:20:44+00:00"  # exactly FORGOTTEN_AFTER_SECONDS after SUBMIT

PENDING = RunStatus(
    run_id="20261128-021844-123abc",
    experiment="digits",
    backend="slurm",
    state="PENDING",
    job_id="7",
    submit_time=SUBMIT,
)
RUNNING = replace(PENDING, state="RUNNING", start_time=START, nodes=["n1", "n2"])
ENDED = replace(RUNNING, exit_code=0, end_time=END)  # the lead task recorded its end; not final yet
UNREACHABLE = replace(RUNNING, scheduler_unreachable_since=START, scheduler_error="squeue: timed out")
LOST_RUN = replace(RUNNING, state=LOST, final=True, note="the scheduler answered and no longer knows job 7")
COMPLETED = replace(ENDED, state="COMPLETED", final=True)
FAILURE = FirstFailure(rank=2, role="worker", index=0, host="n3", exit_code=137, time=END)
NOT_KNOWN_NOTE = "final state from the run directory: the scheduler no longer knows the job"


def test_the_fixture_times_straddle_the_forgotten_threshold() -> None:
    """The NotKnown cases below rely on these ages; a changed threshold must fail here, not silently."""
    age = {
        name: (dt.datetime.fromisoformat(t) - dt.datetime.fromisoformat(SUBMIT)).total_seconds()
        for name, t in (("young", YOUNG_NOW), ("edge", EDGE_NOW), ("now", NOW))
    }
    assert age["young"] < FORGOTTEN_AFTER_SECONDS == age["edge"] < age["now"]


# ---------------------------------------------------------------------------------------------- observed
OBSERVED: list[tuple[str, RunStatus, Answer, str, dict[str, Any]]] = [
    # (id, status before, the scheduler's answer, now, expected changes to the status)
    (
        "running+no-answer:state-kept,unreachable-since-now",
        RUNNING,
        NoAnswer("squeue: timed out"),
        NOW,
        {"scheduler_unreachable_since": NOW, "scheduler_error": "squeue: timed out"},
    ),
    (
        "unreachable+no-answer-again:first-time-kept,error-updated",
        UNREACHABLE,
        NoAnswer("sacct: refused"),
        NOW,
        {"scheduler_error": "sacct: refused"},
    ),
    (
        "unreachable+running:cleared",
        UNREACHABLE,
        JobState("RUNNING"),
        NOW,
        {"scheduler_unreachable_since": None, "scheduler_error": ""},
    ),
    (
        "unreachable+not-known-young:cleared,state-kept",
        replace(UNREACHABLE, state="PENDING"),
        NotKnown("sacct"),
        YOUNG_NOW,
        {"state": "PENDING", "scheduler_unreachable_since": None, "scheduler_error": ""},
    ),
    ("pending+running", PENDING, JobState("RUNNING"), NOW, {"state": "RUNNING"}),
    ("pending+pending:unchanged", PENDING, JobState("PENDING", None, "Priority"), NOW, {}),
    ("running+requeued", RUNNING, JobState("REQUEUED"), NOW, {"state": "REQUEUED"}),
    (
        "running+completed-0:final",
        RUNNING,
        JobState("COMPLETED", 0),
        NOW,
        {"state": "COMPLETED", "exit_code": 0, "final": True, "end_time": NOW},
    ),
    (
        "ended-0+completed:end-time-of-the-run-kept",
        ENDED,
        JobState("COMPLETED", 0),
        NOW,
        {"state": "COMPLETED", "final": True},
    ),
    (
        "ended-0+failed-1:exit-code-from-scheduler",
        ENDED,
        JobState("FAILED", 1, "NonZeroExitCode"),
        NOW,
        {"state": "FAILED", "exit_code": 1, "final": True, "reason": "NonZeroExitCode"},
    ),
    (
        "ended-3+failed-1:the-run's-own-code-kept",
        replace(ENDED, exit_code=3),
        JobState("FAILED", 1),
        NOW,
        {"state": "FAILED", "exit_code": 3, "final": True},
    ),
    (
        "running+cancelled-no-code",
        RUNNING,
        JobState("CANCELLED", None, "None"),
        NOW,
        {"state": "CANCELLED", "exit_code": None, "final": True, "end_time": NOW},
    ),
    (
        "running+timeout:runtime-code-kept",
        replace(RUNNING, exit_code=143, end_time=END),
        JobState("TIMEOUT", 0, "TimeLimit"),
        NOW,
        {"state": "TIMEOUT", "exit_code": 143, "final": True, "reason": "TimeLimit"},
    ),
    (
        "reason-None-keeps-recorded-reason",
        replace(RUNNING, reason="Resources"),
        JobState("FAILED", 2, "None"),
        NOW,
        {"state": "FAILED", "exit_code": 2, "final": True, "end_time": NOW},
    ),
    (
        "not-known+ended-0:completed-from-records",
        ENDED,
        NotKnown("sacct"),
        NOW,
        {"state": "COMPLETED", "final": True, "note": NOT_KNOWN_NOTE},
    ),
    (
        "not-known+ended-3:failed-from-records",
        replace(ENDED, exit_code=3),
        NotKnown("sacct"),
        NOW,
        {"state": "FAILED", "final": True, "note": NOT_KNOWN_NOTE},
    ),
    ("not-known+no-end,young:unchanged", RUNNING, NotKnown("sacct"), YOUNG_NOW, {}),
    ("not-known+no-end,at-threshold:unchanged", RUNNING, NotKnown("sacct"), EDGE_NOW, {}),
    ("not-known+exit-code-without-end-time,young:unchanged", replace(RUNNING, exit_code=0), NotKnown(), YOUNG_NOW, {}),
    (
        "lost+running:revised,note-cleared",
        LOST_RUN,
        JobState("RUNNING"),
        NOW,
        {"state": "RUNNING", "final": False, "note": ""},
    ),
    (
        "lost+completed:final-completed,note-cleared",
        LOST_RUN,
        JobState("COMPLETED", 0),
        NOW,
        {"state": "COMPLETED", "exit_code": 0, "final": True, "note": "", "end_time": NOW},
    ),
    ("lost+not-known:unchanged", LOST_RUN, NotKnown("sacct"), NOW, {}),
    (
        "lost+no-answer:unreachable-recorded,still-lost",
        LOST_RUN,
        NoAnswer("x"),
        NOW,
        {"scheduler_unreachable_since": NOW, "scheduler_error": "x"},
    ),
]


@pytest.mark.parametrize(
    ("status", "answer", "now", "changes"), [c[1:] for c in OBSERVED], ids=[c[0] for c in OBSERVED]
)
def test_observed(status: RunStatus, answer: Answer, now: str, changes: dict[str, Any]) -> None:
    assert observed(status, answer, now) == replace(status, **changes)


@pytest.mark.parametrize(
    ("start", "passing"),
    [(PENDING, "CONFIGURING"), (RUNNING, "SUSPENDED"), (RUNNING, "STOPPED"), (PENDING, "REQUEUE_HOLD")],
    ids=["configuring", "suspended", "stopped", "requeue-hold"],
)
def test_a_passing_scheduler_state_is_left_when_the_job_runs_again(start: RunStatus, passing: str) -> None:
    """Slurm's other non-terminal words (nodes booting, suspend/resume, held requeue) are passing states:
    once the scheduler says RUNNING again, status.json must say so too, not keep the passing word."""
    seen = observed(start, JobState(passing), NOW)
    assert seen.state == passing
    assert observed(seen, JobState("RUNNING"), LATER).state == "RUNNING"


def test_not_known_long_after_submit_is_lost() -> None:
    """No end recorded and the scheduler forgot the job long ago: LOST (final), the note names the job."""
    new = observed(RUNNING, NotKnown("sacct"), NOW)
    assert (new.state, new.final) == (LOST, True)
    assert "job 7" in new.note and "revised" in new.note
    assert replace(new, state=RUNNING.state, final=False, note="") == RUNNING


def test_not_known_on_a_pending_job_is_lost_by_submit_age() -> None:
    new = observed(PENDING, NotKnown(), NOW)
    assert (new.state, new.final, new.exit_code) == (LOST, True, None)


ANSWERS: list[tuple[str, Answer]] = [
    ("running", JobState("RUNNING")),
    ("failed-1", JobState("FAILED", 1)),
    ("completed-0", JobState("COMPLETED", 0)),
    ("cancelled", JobState("CANCELLED")),
    ("not-known", NotKnown("sacct")),
    ("no-answer", NoAnswer("timed out")),
]


@pytest.mark.parametrize("answer", [a for _, a in ANSWERS], ids=[i for i, _ in ANSWERS])
@pytest.mark.parametrize(
    "final",
    [
        COMPLETED,
        replace(ENDED, state="FAILED", exit_code=1, final=True),
        replace(RUNNING, state="CANCELLED", final=True),
    ],
    ids=["completed", "failed", "cancelled"],
)
def test_a_final_status_is_never_rewritten(final: RunStatus, answer: Answer) -> None:
    assert observed(final, answer, NOW) is final


STATES = ["PENDING", "RUNNING", "REQUEUED", "SUSPENDED", LOST, *sorted(TERMINAL_STATES)]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("final", [False, True], ids=["open", "final"])
@pytest.mark.parametrize("since", [None, START], ids=["reachable", "unreachable"])
def test_no_answer_never_changes_state_or_final(state: str, final: bool, since: str | None) -> None:
    """A scheduler that did not answer says nothing about the job: whatever the run's state, it is kept."""
    status = replace(ENDED, state=state, final=final, scheduler_unreachable_since=since)
    new = observed(status, NoAnswer("slurmctld: connection refused"), NOW)
    assert (new.state, new.final, new.exit_code, new.end_time) == (state, final, 0, END)
    if not final or state == LOST:
        assert new.scheduler_unreachable_since == (since or NOW)


# ---------------------------------------------------------------------------------------------- the others
def test_submitted_is_a_fresh_pending_record() -> None:
    status = transitions.submitted("r1", "digits", "local", SUBMIT)
    assert status == RunStatus(run_id="r1", experiment="digits", backend="local", state="PENDING", submit_time=SUBMIT)
    assert not status.final


def test_queued_records_the_job_id() -> None:
    assert transitions.queued(replace(PENDING, job_id=None), "42") == replace(PENDING, job_id="42")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (PENDING, replace(PENDING, state="FAILED", final=True, end_time=NOW, message="sbatch: error")),
        (COMPLETED, COMPLETED),
    ],
    ids=["pending:failed-final", "final:unchanged"],
)
def test_submit_failed(status: RunStatus, expected: RunStatus) -> None:
    assert transitions.submit_failed(status, "sbatch: error", NOW) == expected


RESTARTED = replace(ENDED, signals=["SIGTERM"], first_failure=FAILURE)
STARTED: list[tuple[str, RunStatus, int, dict[str, Any]]] = [
    ("pending:first-start", PENDING, 0, {"state": "RUNNING", "start_time": NOW, "nodes": ["n9"]}),
    ("running,same-count:no-reset", RESTARTED, 0, {"state": "RUNNING", "start_time": NOW, "nodes": ["n9"]}),
    (
        "running,already-counted-restart:no-reset",
        replace(RESTARTED, restarts=2),
        2,
        {"state": "RUNNING", "start_time": NOW, "nodes": ["n9"]},
    ),
    ("final:unchanged", COMPLETED, 1, {}),
]


@pytest.mark.parametrize(("status", "restart_count", "changes"), [c[1:] for c in STARTED], ids=[c[0] for c in STARTED])
def test_started(status: RunStatus, restart_count: int, changes: dict[str, Any]) -> None:
    new = transitions.started(status, NOW, ["n9"], restart_count)
    assert replace(new, attempts=status.attempts) == replace(status, **changes)  # attempts: test_attempts_*


@pytest.mark.parametrize("count", [1, 3])
def test_a_higher_restart_count_is_a_restart(count: int) -> None:
    """Slurm requeued the job: the previous attempt's end, signals and failure are cleared and the restart noted."""
    new = transitions.started(RESTARTED, NOW, ["n9"], count)
    assert replace(new, attempts=[]) == replace(
        RESTARTED,
        state="RUNNING",
        start_time=NOW,
        nodes=["n9"],
        end_time=None,
        exit_code=None,
        signals=[],
        first_failure=None,
        restarts=count,
        note=new.note,
    )
    assert f"restart {count}" in new.note
    assert START in new.note and "n1,n2" in new.note  # the previous attempt stays findable


@pytest.mark.parametrize(
    ("env_value", "restarts"), [(None, 0), ("", 0), ("0", 0), ("2", 2)], ids=["unset", "empty", "zero", "two"]
)
def test_restart_count_comes_from_slurm_restart_count(env_value: str | None, restarts: int) -> None:
    env = {
        "SLURM_JOB_ID": "7",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_STEP_NUM_TASKS": "1",
        "SLURM_STEP_NODELIST": "n1",
        "SLURM_STEP_TASKS_PER_NODE": "1",
        "SLURM_JOB_NODELIST": "n1",
    }
    if env_value is not None:
        env["SLURM_RESTART_COUNT"] = env_value
    ctx = TaskContext.from_env(env, "n1")
    assert ctx.restart_count == restarts
    assert transitions.started(ENDED, NOW, ctx.job_nodes, ctx.restart_count).restarts == restarts


LEAD_EXITED: list[tuple[str, RunStatus, list[str], dict[str, Any]]] = [
    ("running:code-and-end-recorded,state-kept", RUNNING, [], {"exit_code": 1, "end_time": NOW}),
    ("with-signals", RUNNING, ["SIGTERM"], {"exit_code": 1, "end_time": NOW, "signals": ["SIGTERM"]}),
    ("no-new-signals:old-ones-kept", replace(RUNNING, signals=["SIGUSR1"]), [], {"exit_code": 1, "end_time": NOW}),
    ("final:unchanged", COMPLETED, ["SIGTERM"], {}),
]


@pytest.mark.parametrize(
    ("status", "signals", "changes"), [c[1:] for c in LEAD_EXITED], ids=[c[0] for c in LEAD_EXITED]
)
def test_lead_exited(status: RunStatus, signals: list[str], changes: dict[str, Any]) -> None:
    assert transitions.lead_exited(status, 1, NOW, signals) == replace(status, **changes)


@pytest.mark.parametrize(
    ("status", "changes"),
    [(RUNNING, {"exit_code": 2, "end_time": NOW, "message": "no tensorflow"}), (COMPLETED, {})],
    ids=["running:exit-2,state-kept", "final:unchanged"],
)
def test_setup_failed(status: RunStatus, changes: dict[str, Any]) -> None:
    assert transitions.setup_failed(status, "no tensorflow", NOW) == replace(status, **changes)


def test_failed_first_is_never_overwritten() -> None:
    first = transitions.failed_first(RUNNING, FAILURE)
    assert first == replace(RUNNING, first_failure=FAILURE)
    later = FirstFailure(rank=0, role="chief", index=0, host="n1", exit_code=1, time=NOW)
    assert transitions.failed_first(first, later) is first
    assert transitions.failed_first(replace(COMPLETED, first_failure=FAILURE), later).first_failure == FAILURE


def test_failed_first_is_recorded_even_on_a_final_run() -> None:
    """The failing task's record may arrive after the supervisor finalised the run: it still names it."""
    assert transitions.failed_first(COMPLETED, FAILURE).first_failure == FAILURE


FINALISED: list[tuple[str, RunStatus, str, int | None, str, dict[str, Any]]] = [
    (
        "running:given-code,end-now",
        RUNNING,
        "FAILED",
        1,
        "",
        {"state": "FAILED", "exit_code": 1, "final": True, "end_time": NOW},
    ),
    (
        "ended:recorded-code-and-end-kept",
        replace(ENDED, exit_code=3),
        "FAILED",
        1,
        "",
        {"state": "FAILED", "exit_code": 3, "final": True},
    ),
    (
        "cancelled-with-reason",
        RUNNING,
        "CANCELLED",
        None,
        "cancelled by the user",
        {"state": "CANCELLED", "final": True, "end_time": NOW, "reason": "cancelled by the user"},
    ),
    (
        "unreachable:cleared",
        UNREACHABLE,
        "COMPLETED",
        0,
        "",
        {
            "state": "COMPLETED",
            "exit_code": 0,
            "final": True,
            "end_time": NOW,
            "scheduler_unreachable_since": None,
            "scheduler_error": "",
        },
    ),
    ("final:unchanged", COMPLETED, "FAILED", 9, "late", {}),
]


@pytest.mark.parametrize(
    ("status", "state", "code", "reason", "changes"), [c[1:] for c in FINALISED], ids=[c[0] for c in FINALISED]
)
def test_finalised(status: RunStatus, state: str, code: int | None, reason: str, changes: dict[str, Any]) -> None:
    assert transitions.finalised(status, state, code, NOW, reason) == replace(status, **changes)


@pytest.mark.parametrize(
    "change",
    [
        lambda s: transitions.submit_failed(s, "m", LATER),
        lambda s: transitions.started(s, LATER, ["x"], 5),
        lambda s: transitions.lead_exited(s, 9, LATER, ["SIGKILL"]),
        lambda s: transitions.setup_failed(s, "m", LATER),
        lambda s: transitions.finalised(s, "FAILED", 9, LATER),
    ],
    ids=["submit_failed", "started", "lead_exited", "setup_failed", "finalised"],
)
@pytest.mark.parametrize("final", [COMPLETED, LOST_RUN], ids=["completed", "lost"])
def test_events_after_the_end_change_nothing(change: Any, final: RunStatus) -> None:
    """Only `observed` may revise a LOST verdict; every in-job event after a final status is stale."""
    assert change(final) == final


def test_attempts_are_recorded_one_per_start_slurm_made() -> None:
    """Issue 11: every attempt is kept (job id, nodes, start, end, cause, the decision taken)."""
    first = transitions.started(QUEUED_FOR_ATTEMPTS, NOW, ["n1"], 0)
    assert [(a.n, a.nodes, a.start) for a in first.attempts] == [(0, ["n1"], NOW)]
    again = transitions.started(first, LATER, ["n2"], 0)  # the same attempt's start written again
    assert [(a.n, a.nodes) for a in again.attempts] == [(0, ["n2"])]
    ended = transitions.attempt_ended(again, "timeout", 7, "requeued after timeout (restart 1)", True, LATER)
    assert ended.state == "REQUEUED" and not ended.final
    assert (ended.attempts[-1].cause, ended.attempts[-1].checkpoint_step) == ("timeout", 7)
    second = transitions.started(ended, LATER, ["n3"], 1)
    assert [(a.n, a.cause) for a in second.attempts] == [(0, "timeout"), (1, "")] and second.restarts == 1
    refused = transitions.attempt_ended(second, "timeout", 7, "max_restarts reached (1 of 1)", False, LATER)
    assert refused.state == "RUNNING" and refused.message == "not requeued: max_restarts reached (1 of 1)"
    assert ended.restarts_by_cause == refused.restarts_by_cause == {"timeout": 1}  # a refusal is no restart
    restarted = transitions.attempt_ended(second, "preemption", 9, "requeued after preemption (restart 2)", True, LATER)
    assert restarted.restarts_by_cause == {"timeout": 1, "preemption": 1}
    unasked = transitions.attempt_ended(second, "node_failure", 9, "node_failure is not in requeue_on", False, LATER,
                                        "not restarted")  # fmt: skip
    assert unasked.message == "not restarted: node_failure is not in requeue_on"


QUEUED_FOR_ATTEMPTS = transitions.queued(transitions.submitted("r", "e", "slurm", NOW), "7")
