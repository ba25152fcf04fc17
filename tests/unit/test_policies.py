"""`core.policies`: HyperDrive's early-termination rules as pure functions of metric histories.

Rows give the trial's own history (`mine`: its value at intervals 1, 2, ...) and its siblings' (running
ones included, of any length), and the decision expected. Every row is decided twice: a decision must be
reproducible from its inputs (policy.jsonl records them).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpc_tf.sweeps.core.policies import Decision, decide, eligible
from hpc_tf.sweeps.core.spec import PolicySpec

NAN, INF = float("nan"), float("inf")
BANDIT_F = PolicySpec(type="bandit", slack_factor=0.2)
BANDIT_A = PolicySpec(type="bandit", slack_amount=0.5)
MEDIAN = PolicySpec(type="median_stopping")
TRUNC_50 = PolicySpec(type="truncation_selection", truncation_percentage=50)

Row = tuple[str, PolicySpec, str, list[Any], dict[str, list[Any]], dict[str, Any]]


def decided(policy: PolicySpec | None, goal: str, mine: list[Any], siblings: dict[str, list[Any]]) -> Decision:
    first = decide(policy, goal, mine, siblings)
    assert decide(policy, goal, list(mine), dict(siblings)) == first  # same inputs, same decision
    return first


def check(decision: Decision, expected: dict[str, Any]) -> None:
    for field, want in expected.items():
        got = getattr(decision, field)
        if isinstance(want, float):
            assert got == pytest.approx(want), f"{field}: {decision}"
        else:
            assert got == want, f"{field}: {decision}"


def run_table(rows: list[Row]) -> Any:
    return pytest.mark.parametrize(
        ("policy", "goal", "mine", "siblings", "expected"), [r[1:] for r in rows], ids=[r[0] for r in rows]
    )


# ---------------------------------------------------------------------------------------------- bandit
BANDIT: list[Row] = [
    # (id, policy, goal, mine, siblings, the Decision's expected fields)
    (
        "azure-docs-0.8-factor-0.2-threshold-0.667",
        BANDIT_F,
        "maximize",
        [0.6],
        {"a": [0.8]},
        {"terminate": True, "interval": 1, "value": 0.6, "threshold": 0.8 / 1.2, "best": 0.8, "compared": 2},
    ),
    (
        "azure-docs-0.7-survives",
        BANDIT_F,
        "maximize",
        [0.7],
        {"a": [0.8]},
        {"terminate": False, "interval": 1, "threshold": 0.6666666666666667, "best": 0.8},
    ),
    (
        "best-is-over-all-siblings",
        BANDIT_F,
        "maximize",
        [0.7],
        {"a": [0.8], "b": [0.9], "c": [0.1]},
        {"terminate": True, "best": 0.9, "threshold": 0.75, "compared": 4},
    ),
    (
        "the-trial-itself-is-best",
        BANDIT_F,
        "maximize",
        [0.9],
        {"a": [0.1]},
        {"terminate": False, "best": 0.9, "threshold": 0.75},
    ),
    ("amount", BANDIT_A, "maximize", [0.4], {"a": [1.0]}, {"terminate": True, "threshold": 0.5, "best": 1.0}),
    ("amount-at-threshold-survives", BANDIT_A, "maximize", [0.5], {"a": [1.0]}, {"terminate": False, "threshold": 0.5}),
    ("amount-negative-values", BANDIT_A, "maximize", [-2.0], {"a": [-1.0]}, {"terminate": True, "threshold": -1.5}),
    (
        "minimize-factor-loss",
        BANDIT_F,
        "minimize",
        [0.61],
        {"a": [0.5]},
        {"terminate": True, "value": 0.61, "threshold": 0.6, "best": 0.5},
    ),
    (
        "minimize-factor-loss-survives",
        BANDIT_F,
        "minimize",
        [0.59],
        {"a": [0.5]},
        {"terminate": False, "threshold": 0.6},
    ),
    ("minimize-amount", BANDIT_A, "minimize", [1.6], {"a": [1.0]}, {"terminate": True, "threshold": 1.5, "best": 1.0}),
    ("minimize-amount-survives", BANDIT_A, "minimize", [1.4], {"a": [1.0]}, {"terminate": False}),
    (
        "minimize-best-is-the-lowest",
        BANDIT_F,
        "minimize",
        [0.31],
        {"a": [0.25], "b": [2.0]},
        {"terminate": True, "best": 0.25, "threshold": 0.3},
    ),
    (
        "maximize-negative-best-factor",
        BANDIT_F,
        "maximize",
        [-0.7],
        {"a": [-0.5]},
        {"terminate": True, "threshold": -0.6},
    ),
    (
        "maximize-negative-best-survives",
        BANDIT_F,
        "maximize",
        [-0.55],
        {"a": [-0.5]},
        {"terminate": False, "threshold": -0.6},
    ),
    (
        "minimize-negative-best-factor",
        BANDIT_F,
        "minimize",
        [-0.3],
        {"a": [-0.6]},
        {"terminate": True, "threshold": -0.5},
    ),
    (
        "best-zero-factor-cannot-apply",
        BANDIT_F,
        "maximize",
        [-5.0],
        {"a": [0.0]},
        {"terminate": False, "threshold": None, "best": 0.0},
    ),
    ("no-sibling-value-yet", BANDIT_F, "maximize", [0.1], {}, {"terminate": False, "interval": 1, "compared": 0}),
    ("sibling-not-there-yet", BANDIT_F, "maximize", [0.5, 0.1], {"a": [0.5]}, {"terminate": False, "interval": 2}),
    (
        "younger-trial-vs-older-sibling",
        BANDIT_F,
        "maximize",
        [0.1],
        {"a": [0.5, 0.9, 0.99]},
        {"terminate": True, "interval": 1, "best": 0.5},
    ),
    (
        "first-firing-interval-wins",
        BANDIT_F,
        "maximize",
        [0.1, 0.9],
        {"a": [0.9, 0.5]},
        {"terminate": True, "interval": 1},
    ),
    (
        "last-evaluated-when-none-fires",
        BANDIT_F,
        "maximize",
        [0.9, 0.9, 0.9],
        {"a": [0.8, 0.8, 0.8]},
        {"terminate": False, "interval": 3, "value": 0.9},
    ),
    (
        "delay-evaluation",
        PolicySpec(type="bandit", slack_factor=0.2, delay_evaluation=3),
        "maximize",
        [0.1, 0.1, 0.1],
        {"a": [0.9, 0.9, 0.9]},
        {"terminate": True, "interval": 3},
    ),
    (
        "evaluation-interval",
        PolicySpec(type="bandit", slack_factor=0.2, evaluation_interval=2),
        "maximize",
        [0.1, 0.1],
        {"a": [0.9, 0.9]},
        {"terminate": True, "interval": 2},
    ),
    (
        "nothing-eligible-yet",
        PolicySpec(type="bandit", slack_factor=0.2, delay_evaluation=5),
        "maximize",
        [0.1, 0.1],
        {"a": [0.9, 0.9]},
        {"terminate": False, "interval": 0, "value": None},
    ),
    ("empty-history", BANDIT_F, "maximize", [], {"a": [0.9]}, {"terminate": False, "interval": 0}),
]


@run_table(BANDIT)
def test_bandit(
    policy: PolicySpec, goal: str, mine: list[Any], siblings: dict[str, list[Any]], expected: dict[str, Any]
) -> None:
    check(decided(policy, goal, mine, siblings), {"rule": "bandit", **expected})


def test_bandit_reasons_say_why() -> None:
    assert "0.666667" in decide(BANDIT_F, "maximize", [0.6], {"a": [0.8]}).reason
    assert "cannot apply" in decide(BANDIT_F, "maximize", [-5.0], {"a": [0.0]}).reason
    assert "no other trial" in decide(BANDIT_F, "maximize", [0.1], {}).reason
    assert "no eligible interval" in decide(BANDIT_F, "maximize", [], {}).reason


# ---------------------------------------------------------------------------------------------- median stopping
MEDIAN_ROWS: list[Row] = [
    (
        "below-the-median",
        MEDIAN,
        "maximize",
        [0.1],
        {"a": [0.5], "b": [0.1]},
        {"terminate": True, "interval": 1, "value": 0.1, "threshold": 0.3, "compared": 2},
    ),
    ("above-the-median", MEDIAN, "maximize", [0.4], {"a": [0.5], "b": [0.1]}, {"terminate": False, "threshold": 0.3}),
    (
        "at-the-median-survives",
        MEDIAN,
        "maximize",
        [0.5],
        {"a": [0.5], "b": [0.1], "c": [0.9]},
        {"terminate": False, "threshold": 0.5},
    ),
    (
        "odd-count-middle",
        MEDIAN,
        "maximize",
        [0.45],
        {"a": [0.1], "b": [0.5], "c": [0.9]},
        {"terminate": True, "threshold": 0.5},
    ),
    (
        "even-count-mean-of-middles",
        MEDIAN,
        "maximize",
        [0.45],
        {"a": [0.2], "b": [0.4], "c": [0.6], "d": [0.8]},
        {"terminate": True, "threshold": 0.5},
    ),
    (
        "running-average-not-last-value",
        PolicySpec(type="median_stopping", delay_evaluation=2),
        "maximize",
        [0.2, 0.4],
        {"a": [1.0, 0.0]},
        {"terminate": True, "interval": 2, "threshold": 0.5, "value": 0.4},
    ),
    (
        "the-trials-best-so-far",
        MEDIAN,
        "maximize",
        [0.9, 0.1],
        {"a": [0.5, 0.5]},
        {"terminate": False, "interval": 2, "value": 0.9},
    ),
    (
        "siblings-with-fewer-values-left-out",
        PolicySpec(type="median_stopping", delay_evaluation=2),
        "maximize",
        [0.2, 0.2],
        {"a": [0.9], "b": [0.1, 0.1]},
        {"terminate": False, "interval": 2, "threshold": 0.1, "compared": 1},
    ),
    (
        "longer-siblings-averaged-up-to-k",
        MEDIAN,
        "maximize",
        [0.3],
        {"a": [0.2, 0.9, 0.9]},
        {"terminate": False, "threshold": 0.2},
    ),
    (
        "minimize-above-the-median",
        MEDIAN,
        "minimize",
        [0.9],
        {"a": [0.5], "b": [0.3]},
        {"terminate": True, "value": 0.9, "threshold": 0.4},
    ),
    (
        "minimize-best-is-the-lowest",
        MEDIAN,
        "minimize",
        [0.1, 0.9],
        {"a": [0.5, 0.5]},
        {"terminate": False, "interval": 2, "value": 0.1},
    ),
    ("no-siblings", MEDIAN, "maximize", [0.1], {}, {"terminate": False, "compared": 0}),
]


@run_table(MEDIAN_ROWS)
def test_median_stopping(
    policy: PolicySpec, goal: str, mine: list[Any], siblings: dict[str, list[Any]], expected: dict[str, Any]
) -> None:
    check(decided(policy, goal, mine, siblings), {"rule": "median_stopping", **expected})


# ---------------------------------------------------------------------------------------------- truncation
def trunc(percent: int) -> PolicySpec:
    return PolicySpec(type="truncation_selection", truncation_percentage=percent)


TRUNCATION: list[Row] = [
    (
        "worst-of-4-at-50",
        TRUNC_50,
        "maximize",
        [1.0],
        {"a": [2.0], "b": [3.0], "c": [4.0]},
        {"terminate": True, "threshold": 3.0, "compared": 4},
    ),
    ("second-worst-of-4-at-50", TRUNC_50, "maximize", [2.0], {"a": [1.0], "b": [3.0], "c": [4.0]}, {"terminate": True}),
    (
        "third-of-4-at-50-kept",
        TRUNC_50,
        "maximize",
        [3.0],
        {"a": [1.0], "b": [2.0], "c": [4.0]},
        {"terminate": False, "threshold": 3.0},
    ),
    (
        "ties-with-the-cut-line-kept",
        TRUNC_50,
        "maximize",
        [2.0],
        {"a": [2.0], "b": [2.0], "c": [3.0]},
        {"terminate": False, "threshold": 2.0},
    ),
    ("all-tied-kept", TRUNC_50, "maximize", [1.0], {"a": [1.0], "b": [1.0], "c": [1.0]}, {"terminate": False}),
    ("cut-rounds-down-to-none", trunc(25), "maximize", [0.0], {"a": [1.0], "b": [2.0]}, {"terminate": False}),
    ("99-of-2-cuts-one", trunc(99), "maximize", [0.0], {"a": [1.0]}, {"terminate": True, "threshold": 1.0}),
    (
        "10-of-10-cuts-one",
        trunc(10),
        "maximize",
        [0.0],
        {str(i): [float(i)] for i in range(1, 10)},
        {"terminate": True, "threshold": 1.0, "compared": 10},
    ),
    (
        "10-of-10-keeps-the-second",
        trunc(10),
        "maximize",
        [1.5],
        {str(i): [float(i)] for i in (0, *range(2, 10))},
        {"terminate": False},
    ),
    (
        "minimize-highest-cut",
        TRUNC_50,
        "minimize",
        [4.0],
        {"a": [1.0], "b": [2.0], "c": [3.0]},
        {"terminate": True, "value": 4.0, "threshold": 2.0},
    ),
    ("minimize-lowest-kept", TRUNC_50, "minimize", [1.0], {"a": [4.0], "b": [2.0], "c": [3.0]}, {"terminate": False}),
    (
        "younger-trial-vs-older-siblings",
        TRUNC_50,
        "maximize",
        [0.1],
        {"a": [0.5, 0.0], "b": [0.6, 0.0, 0.0]},
        {"terminate": True, "interval": 1, "compared": 3},
    ),
    ("no-siblings", TRUNC_50, "maximize", [0.1], {}, {"terminate": False, "compared": 0}),
]


@run_table(TRUNCATION)
def test_truncation_selection(
    policy: PolicySpec, goal: str, mine: list[Any], siblings: dict[str, list[Any]], expected: dict[str, Any]
) -> None:
    check(decided(policy, goal, mine, siblings), {"rule": "truncation_selection", **expected})


# ---------------------------------------------------------------------------------------------- not numbers
NOT_FINITE: list[Row] = [
    ("bandit-own-nan", BANDIT_F, "maximize", [NAN], {"a": [0.5]}, {"terminate": True, "value": None, "best": 0.5}),
    ("bandit-own-nan-minimize", BANDIT_F, "minimize", [NAN], {"a": [0.5]}, {"terminate": True, "value": None}),
    ("bandit-own-inf-is-not-best", BANDIT_F, "maximize", [INF], {"a": [0.5]}, {"terminate": True, "value": None}),
    ("bandit-own-nan-best-zero", BANDIT_F, "maximize", [NAN], {"a": [0.0]}, {"terminate": True}),
    ("bandit-own-text", BANDIT_A, "maximize", ["0.9"], {"a": [0.5]}, {"terminate": True, "value": None}),
    ("bandit-own-none", BANDIT_A, "maximize", [None], {"a": [0.5]}, {"terminate": True}),
    ("bandit-own-bool", BANDIT_A, "maximize", [True], {"a": [0.5]}, {"terminate": True}),
    ("bandit-own-nan-alone", BANDIT_F, "maximize", [NAN], {}, {"terminate": False}),
    ("bandit-sibling-nan-ignored", BANDIT_F, "maximize", [0.5], {"a": [NAN]}, {"terminate": False, "compared": 0}),
    (
        "bandit-sibling-inf-ignored",
        BANDIT_F,
        "maximize",
        [0.5],
        {"a": [INF], "b": [0.55]},
        {"terminate": False, "best": 0.55, "compared": 2},
    ),
    ("bandit-sibling-text-ignored", BANDIT_A, "maximize", [0.5], {"a": ["9"], "b": [None]}, {"terminate": False}),
    ("bandit-nan-later", BANDIT_F, "maximize", [0.9, NAN], {"a": [0.8, 0.8]}, {"terminate": True, "interval": 2}),
    (
        "median-own-nan-now",
        MEDIAN,
        "maximize",
        [0.5, NAN],
        {"a": [0.1, 0.1]},
        {"terminate": True, "interval": 2, "value": None},
    ),
    ("median-own-nan-earlier", MEDIAN, "maximize", [NAN, 0.5], {"a": [0.1, 0.1]}, {"terminate": True, "interval": 1}),
    (
        "median-sibling-nan-skipped-in-average",
        MEDIAN,
        "maximize",
        [0.5, 0.5],
        {"a": [0.4, NAN]},
        {"terminate": False, "interval": 2, "threshold": 0.4},
    ),
    (
        "median-sibling-all-nan-left-out",
        MEDIAN,
        "maximize",
        [0.1],
        {"a": [NAN], "b": [0.05]},
        {"terminate": False, "compared": 1},
    ),
    ("truncation-own-nan", TRUNC_50, "maximize", [NAN], {"a": [0.5]}, {"terminate": True, "value": None}),
    ("truncation-own-nan-cut-even-below-one", trunc(10), "maximize", [NAN], {"a": [0.5]}, {"terminate": True}),
    (
        "truncation-sibling-nan-ignored",
        TRUNC_50,
        "maximize",
        [0.1],
        {"a": [NAN], "b": [0.5]},
        {"terminate": True, "compared": 2},
    ),
]


@run_table(NOT_FINITE)
def test_values_that_are_not_finite_numbers(
    policy: PolicySpec, goal: str, mine: list[Any], siblings: dict[str, list[Any]], expected: dict[str, Any]
) -> None:
    check(decided(policy, goal, mine, siblings), expected)


# ---------------------------------------------------------------------------------------------- timing
def test_a_sibling_reaching_an_interval_after_us_still_terminates_us() -> None:
    """At our interval 2, sibling b had logged once; by our interval 3 it has logged interval 2 too. The
    interval-2 comparison happens then, and gives what it would have given had b been faster."""
    policy = PolicySpec(type="bandit", slack_factor=0.1)
    mine = [0.9, 0.5, 0.5]
    at_our_2 = decide(policy, "maximize", mine[:2], {"b": [0.9]})
    assert not at_our_2.terminate
    at_our_3 = decide(policy, "maximize", mine, {"b": [0.9, 0.9]})
    assert (at_our_3.terminate, at_our_3.interval, at_our_3.best) == (True, 2, 0.9)
    b_was_faster = decide(policy, "maximize", mine[:2], {"b": [0.9, 0.9]})
    assert b_was_faster == at_our_3


@pytest.mark.parametrize("policy", [BANDIT_F, MEDIAN, TRUNC_50], ids=["bandit", "median", "truncation"])
def test_the_order_of_siblings_does_not_matter(policy: PolicySpec) -> None:
    siblings = {"c": [0.3, 0.9], "a": [0.7, 0.1], "b": [0.5]}
    reordered = dict(reversed(list(siblings.items())))
    assert decide(policy, "maximize", [0.4, 0.4], siblings) == decide(policy, "maximize", [0.4, 0.4], reordered)


def test_no_policy_never_terminates() -> None:
    assert decide(None, "maximize", [NAN], {"a": [1.0]}) == Decision(
        terminate=False, rule="none", interval=0, reason="no early-termination policy"
    )


def test_an_unknown_goal_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="maximize"):
        decide(BANDIT_F, "MAXIMIZE", [0.1], {})


ELIGIBLE = [
    # (evaluation_interval, delay_evaluation, interval, eligible)
    (1, 0, 1, True),
    (1, 0, 7, True),
    (2, 0, 1, False),
    (2, 0, 2, True),
    (2, 0, 3, False),
    (1, 5, 4, False),
    (1, 5, 5, True),
    (3, 5, 5, False),
    (3, 5, 6, True),
    (1, 0, 0, False),
]


@pytest.mark.parametrize(("every", "delay", "interval", "expected"), ELIGIBLE)
def test_eligible(every: int, delay: int, interval: int, expected: bool) -> None:
    policy = PolicySpec(type="median_stopping", evaluation_interval=every, delay_evaluation=delay)
    assert eligible(policy, interval) is expected


# ---------------------------------------------------------------------------------------------- properties
POLICIES = [
    BANDIT_F,
    BANDIT_A,
    PolicySpec(type="bandit", slack_factor=1e300),
    PolicySpec(type="bandit", slack_amount=1e308, evaluation_interval=2),
    MEDIAN,
    PolicySpec(type="median_stopping", evaluation_interval=2, delay_evaluation=3),
    TRUNC_50,
    trunc(1),
    trunc(99),
]
values = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**400), 10**400) | st.none()
floats = st.floats(allow_nan=True, allow_infinity=True)
histories = st.lists(floats, max_size=8)


@settings(max_examples=300, deadline=None)
@given(
    policy=st.sampled_from(POLICIES),
    goal=st.sampled_from(["maximize", "minimize"]),
    mine=st.lists(values, max_size=8),
    siblings=st.dictionaries(st.text(max_size=3), st.lists(values, max_size=8), max_size=5),
)
def test_decide_never_raises_and_is_deterministic(
    policy: PolicySpec, goal: str, mine: list[Any], siblings: dict[str, list[Any]]
) -> None:
    first = decide(policy, goal, mine, siblings)
    assert decide(policy, goal, mine, siblings) == first
    assert 0 <= first.interval <= len(mine)
    assert not first.terminate or eligible(policy, first.interval)


def _negated(value: float | None) -> float | None:
    return None if value is None else -value


@settings(max_examples=300, deadline=None)
@given(
    policy=st.sampled_from(POLICIES),
    mine=histories,
    siblings=st.dictionaries(st.text(max_size=3), histories, max_size=5),
)
def test_minimize_is_the_mirror_of_maximize(
    policy: PolicySpec, mine: list[float], siblings: dict[str, list[float]]
) -> None:
    low = decide(policy, "minimize", mine, siblings)
    high = decide(policy, "maximize", [-v for v in mine], {k: [-v for v in h] for k, h in siblings.items()})
    assert (low.terminate, low.rule, low.interval, low.compared) == (
        high.terminate,
        high.rule,
        high.interval,
        high.compared,
    )
    assert (low.value, low.threshold, low.best) == tuple(_negated(v) for v in (high.value, high.threshold, high.best))
    assert not any(isinstance(v, float) and math.isnan(v) for v in (low.value, low.threshold, low.best))
