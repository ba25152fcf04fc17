"""core.requeue (issue 11, foundations): the Slurm options, what a warning means, whether to requeue."""

from __future__ import annotations

import pytest

from hpc_tf.core.requeue import cause_of_warning, decide_requeue, requeue_directives


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
    from hpc_tf.loading import validate

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
    from hpc_tf.core.plan import executor_parameters, sbatch_directives
    from hpc_tf.core.spec import SlurmOptions

    spec = _spec(tmp_path, requeue_on=["timeout"], checkpoint_lead_seconds=60)
    directives = dict(sbatch_directives(spec, SlurmOptions()))
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
    from hpc_tf.job.requeue import parse_time_left

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
