"""core.requeue (issue 11, foundations): the Slurm options, what a warning means, whether to requeue."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpc_tf.core.requeue import cause_of_warning, decide_requeue
from hpc_tf.core.slurm_options import requeue_directives


@pytest.mark.parametrize(
    ("requeue_on", "expected"),
    [
        ([], [("no-requeue", None)]),
        (["timeout"], [("requeue", None), ("signal", "USR2@120")]),
        (["preemption"], [("requeue", None), ("signal", "USR2@120")]),
        (["node_failure"], [("requeue", None)]),  # no warning comes before a node fails
        (["node_failure", "timeout"], [("requeue", None), ("signal", "USR2@120")]),
    ],
)
def test_directives(requeue_on: list[str], expected: list) -> None:
    assert requeue_directives(requeue_on, "USR2", 120) == expected


def test_directives_under_mpirun_signal_the_batch_shell() -> None:
    assert requeue_directives(["timeout"], "USR2", 120, batch_shell=True) == [
        ("requeue", None),
        ("signal", "B:USR2@120"),
    ]


@pytest.mark.parametrize(
    ("left", "lead", "cause"),
    [
        (100, 60, "timeout"),
        (150, 60, "timeout"),
        (151, 60, "preemption"),
        (None, 60, "preemption"),
        (3600, 60, "preemption"),
    ],
)
def test_cause_of_warning(left: float | None, lead: int, cause: str) -> None:
    assert cause_of_warning(left, lead) == cause


@pytest.mark.parametrize(
    ("cause", "requeue_on", "limit", "past", "steps", "allowed", "words"),
    [
        ("timeout", ["timeout"], 3, [], [10], True, "restart 1"),
        ("timeout", ["preemption"], 3, [], [10], False, "not in requeue_on"),
        ("timeout", ["timeout"], 3, ["timeout"] * 3, [1, 2, 3, 4], False, "max_restarts reached (3 of 3)"),
        ("timeout", ["timeout"], 0, [], [1], False, "max_restarts reached (0 of 0)"),
        (
            "preemption",
            ["timeout", "preemption"],
            {"timeout": 1, "preemption": 5},
            ["timeout"],
            [1, 2],
            True,
            "restart 2",
        ),
        (
            "timeout",
            ["timeout", "preemption"],
            {"timeout": 1, "preemption": 5},
            ["timeout"],
            [1, 2],
            False,
            "max_restarts.timeout",
        ),
        (
            "node_failure",
            ["node_failure"],
            {"timeout": 1},
            [],
            [1],
            False,
            "max_restarts.node_failure reached (0 of 0)",
        ),
        ("timeout", ["timeout"], 9, ["timeout", "timeout"], [5, 5, 5], False, "no progress"),
        ("timeout", ["timeout"], 9, ["timeout", "timeout"], [None, None, None], False, "no progress"),
        ("timeout", ["timeout"], 9, ["timeout", "timeout"], [4, 5, 5], True, "restart 3"),  # one stall is allowed
        ("timeout", ["timeout"], 9, ["timeout"], [None, None], True, "restart 2"),
    ],
)
def test_decide_requeue(
    cause: str, requeue_on: list[str], limit: object, past: list[str], steps: list, allowed: bool, words: str
) -> None:
    decision = decide_requeue(cause, requeue_on, limit, past, steps)  # type: ignore[arg-type]
    assert decision.allowed is allowed and words in decision.reason, decision


def _spec(tmp_path, **keys):  # type: ignore[no-untyped-def]
    from hpc_tf.config.loading import validate

    (tmp_path / "train.py").write_text("pass\n")
    return validate({"source_directory": str(tmp_path), "entry_script": "train.py", **keys}, tmp_path)


@pytest.mark.parametrize(
    ("keys", "key"),
    [
        ({"checkpoint_dir": "../elsewhere"}, "checkpoint_dir"),
        ({"checkpoint_dir": "/abs"}, "checkpoint_dir"),
        ({"requeue_on": ["timeout", "timeout"]}, "requeue_on[1]"),
        ({"requeue_on": ["sometimes"]}, "requeue_on"),
        ({"max_restarts": {"weather": 2}}, "max_restarts.weather"),
        ({"max_restarts": -1}, "max_restarts"),
        ({"checkpoint_signal": "KILL"}, "checkpoint_signal"),
        ({"checkpoint_lead_seconds": 5}, "checkpoint_lead_seconds"),
        ({"checkpoint_every": "batch"}, "checkpoint_every"),
        ({"checkpoint_every": 0}, "checkpoint_every"),
        (
            {"requeue_on": ["timeout"], "compute_target": {"additional_parameters": {"requeue": True}}},
            "requeue_on + compute_target.additional_parameters.requeue",
        ),
    ],
)
def test_bad_requeue_keys_are_named(tmp_path, keys: dict, key: str) -> None:  # type: ignore[no-untyped-def]
    from hpc_tf.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        _spec(tmp_path, **keys)
    assert key in [p.key for p in info.value.problems], info.value


def test_the_job_script_and_the_executor_ask_the_same(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from hpc_tf.core.plan import executor_parameters, slurm_plan
    from hpc_tf.core.spec import SlurmOptions

    spec = _spec(tmp_path, requeue_on=["timeout"], checkpoint_lead_seconds=60)
    directives = dict(slurm_plan(spec, SlurmOptions(), "python3", "").directives)
    assert "no-requeue" not in directives and directives["requeue"] is None and directives["signal"] == "USR2@60"
    extra = executor_parameters(spec, SlurmOptions())["additional_parameters"]
    assert extra["requeue"] is True and extra["signal"] == "USR2@60" and "no_requeue" not in extra
    plain = executor_parameters(_spec(tmp_path), SlurmOptions())["additional_parameters"]
    assert plain["no_requeue"] is True and "signal" not in plain


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("59", 59),
        ("1:05", 65),
        ("2:00:01", 7201),
        ("1-00:00:00", 86400),
        ("UNLIMITED", None),
        ("INVALID", None),
        ("", None),
    ],
)
def test_time_left(text: str, seconds: int | None) -> None:
    from hpc_tf.core.requeue import slurm_seconds as parse_time_left

    assert parse_time_left(text) == seconds


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SLURM_JOB_ID": "12"}, "12"),
        ({"SLURM_JOB_ID": "14", "SLURM_ARRAY_JOB_ID": "9", "SLURM_ARRAY_TASK_ID": "3"}, "9_3"),
    ],
)
def test_requeue_the_array_task_alone(env: dict, expected: str) -> None:
    from hpc_tf.job.requeue import requeue_id

    assert requeue_id(env) == expected


# Recorded from the dev cluster (Slurm 22.05): a job in `debug` preempted by a job in `high` (PreemptMode=REQUEUE,
# preempt_send_user_signal, GraceTime=60) got USR2 with these fields; EndTime moved to PreemptTime + GraceTime.
PREEMPTED = {
    "JobState": "RUNNING",
    "RunTime": "00:00:04",
    "TimeLimit": "00:10:00",
    "PreemptTime": "2026-11-28T19:39:31",
}


@pytest.mark.parametrize(
    ("fields", "lead", "cause"),
    [
        (PREEMPTED, 120, "preemption"),
        ({**PREEMPTED, "TimeLimit": "00:01:00"}, 120, "preemption"),  # preempted near the limit: still a preemption
        ({"RunTime": "00:00:04", "TimeLimit": "00:10:00", "PreemptTime": "None"}, 120, "preemption"),  # `scancel -s`
        ({"RunTime": "00:08:10", "TimeLimit": "00:10:00", "PreemptTime": "None"}, 60, "timeout"),
        ({"RunTime": "1-23:58:00", "TimeLimit": "2-00:00:00", "PreemptTime": "None"}, 60, "timeout"),
        ({"RunTime": "00:08:10", "TimeLimit": "UNLIMITED", "PreemptTime": "None"}, 60, "preemption"),
        ({}, 60, "preemption"),  # Slurm did not answer: never a timeout by guess
    ],
)
def test_warning_cause(fields: dict, lead: int, cause: str) -> None:
    from hpc_tf.core.requeue import warning_cause

    assert warning_cause(fields, lead) == cause


@pytest.mark.parametrize(
    ("states", "down"),
    [
        ({"n1": "IDLE", "n2": "ALLOCATED", "n3": "MIXED"}, []),
        ({"n1": "DOWN", "n2": "ALLOCATED"}, ["n1"]),  # dev-cluster.sh node-down
        ({"n1": "IDLE*", "n2": "DOWN*"}, ["n1", "n2"]),  # not responding (kill-slurmd)
        ({"n1": "IDLE+DRAIN", "n2": "DOWN+NOT_RESPONDING"}, ["n1", "n2"]),
        ({"n10": "ALLOCATED+COMPLETING"}, []),
    ],
)
def test_unhealthy_nodes(states: dict, down: list) -> None:
    from hpc_tf.core.requeue import unhealthy_nodes

    assert unhealthy_nodes(states) == down


@pytest.mark.parametrize(
    ("request_cause", "down", "cause"),
    [
        ("timeout", [], "timeout"),  # killed while saving after the limit's warning
        ("preemption", ["n1"], "preemption"),
        (None, ["n2"], "node_failure"),
        (None, [], "preemption"),  # an operator's scontrol requeue, or a preemption without notice
    ],
)
def test_cause_of_unannounced_end(request_cause: str | None, down: list, cause: str) -> None:
    from hpc_tf.core.requeue import cause_of_unannounced_end

    assert cause_of_unannounced_end(request_cause, down) == cause


def test_node_states_are_read_from_scontrol() -> None:
    from hpc_tf.backends.slurm import NODE_STATE

    text = (
        "NodeName=n1 Arch=x86_64 CoresPerSocket=1 CPUAlloc=0 CPUTot=2 State=DOWN ThreadsPerCore=1 Reason=x [root]\n"
        "NodeName=n2 Arch=x86_64 CPUAlloc=2 State=ALLOCATED+COMPLETING ThreadsPerCore=1\n"
    )
    assert dict(NODE_STATE.findall(text)) == {"n1": "DOWN", "n2": "ALLOCATED+COMPLETING"}


def test_the_in_job_runtime_never_loads_submitit() -> None:
    """One owner of Slurm's warning signal: hpc_tf's runtime. submitit's in-job runner (its own USR2/TERM handlers,
    its own `scontrol requeue`) must never be loaded in an hpc_tf job's processes, or a warning would be handled
    twice; the cluster tests show the other half (one warning → Slurm's Restarts=1)."""
    import subprocess
    import sys

    code = (
        "import sys, hpc_tf.job.runtime, hpc_tf.job.requeue, hpc_tf.checkpoint, hpc_tf.metrics;"
        "assert 'submitit' not in sys.modules, sorted(m for m in sys.modules if 'submitit' in m)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(("every", "env"), [(None, "epoch"), ("epoch", "epoch"), (50, "50")])
def test_checkpoint_every_reaches_the_script(tmp_path, every, env: str) -> None:  # type: ignore[no-untyped-def]
    from hpc_tf.core.plan import checkpointing
    from hpc_tf.job.requeue import checkpoint_environment

    spec = _spec(tmp_path, **({} if every is None else {"checkpoint_every": every}))
    record = checkpointing(spec)
    assert record.every == (every or "epoch")

    class Job:  # the one field checkpoint_environment reads
        checkpointing = record

    class Run:
        path = tmp_path

        def checkpoint_request(self, n: int) -> Path:
            return tmp_path / f"req-{n}"

    out = checkpoint_environment(Run(), Job(), 0)  # type: ignore[arg-type]
    assert out["HPC_TF_CHECKPOINT_EVERY"] == env
