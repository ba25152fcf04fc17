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
