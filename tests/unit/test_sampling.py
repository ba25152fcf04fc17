"""`core.sampling`: the trials of a random or grid sweep, drawn at submit time from the seed."""

from __future__ import annotations

import math
import random
from typing import Any, Callable

import msgspec
import pytest

from hpc_tf.sweeps.core.parse import parse_sweep
from hpc_tf.sweeps.core.sampling import draw_trials, grid_size, sample
from hpc_tf.sweeps.core.spec import ParamExpr, Scalar, SweepSpec


def sweep(sampling: str, space: dict[str, Any], runs: int = 50) -> SweepSpec:
    raw = {
        "hyperparameter_sampling": {"type": sampling, "parameter_space": space},
        "primary_metric_name": "acc",
        "primary_metric_goal": "maximize",
        "max_total_runs": runs,
    }
    spec, problems = parse_sweep(raw, "hyperdrive", None)
    assert spec is not None, problems
    return spec


def expr(text: str) -> ParamExpr:
    return sweep("random", {"--x": text}).parameter_space["--x"]


def draws(text: str, n: int = 2000, seed: int = 0) -> list[Scalar]:
    rng = random.Random(seed)
    e = expr(text)
    return [sample(e, rng) for _ in range(n)]


def is_int(v: Scalar) -> bool:
    return type(v) is int


def is_float(v: Scalar) -> bool:
    return type(v) is float


# ---------------------------------------------------------------------------------------------- one value
SAMPLES: list[tuple[str, str, Callable[[Scalar], bool], Callable[[list[Any]], bool]]] = [
    # (id, expression, every value's test, a test of the whole sample)
    ("choice", "choice(16, 32, 64)", lambda v: v in (16, 32, 64), lambda vs: set(vs) == {16, 32, 64}),
    ("choice-strings", "choice('adam', 'sgd')", lambda v: v in ("adam", "sgd"), lambda vs: len(set(vs)) == 2),
    (
        "choice-keeps-types",
        "choice(1, 0.5, True)",
        lambda v: type(v) in (int, float, bool),
        lambda vs: {type(v) for v in vs} == {int, float, bool},
    ),
    ("randint-is-0-to-upper-1", "randint(3)", lambda v: is_int(v) and 0 <= v < 3, lambda vs: set(vs) == {0, 1, 2}),
    ("uniform", "uniform(-1, 2)", lambda v: is_float(v) and -1 <= v <= 2, lambda vs: min(vs) < 0 and max(vs) > 1.5),
    (
        "loguniform-is-log-space",
        "loguniform(-6, -1)",
        lambda v: is_float(v) and math.exp(-6) <= v <= math.exp(-1),
        lambda vs: min(vs) < 0.01 and max(vs) > 0.1,
    ),
    (
        "quniform-integral-q-gives-int",
        "quniform(0, 100, 5)",
        lambda v: is_int(v) and v % 5 == 0 and 0 <= v <= 100,
        lambda vs: {0, 100} <= set(vs),
    ),
    (
        "quniform-fractional-q",
        "quniform(0, 1, 0.1)",
        lambda v: is_float(v) and v in {i / 10 for i in range(11)},
        lambda vs: 0.3 in vs,
    ),
    (
        "quniform-float-integral-q",
        "quniform(0, 10, 2.0)",
        lambda v: is_int(v) and v % 2 == 0,
        lambda vs: len(set(vs)) == 6,
    ),
    (
        "qloguniform",
        "qloguniform(0, 5, 1)",
        lambda v: is_int(v) and 1 <= v <= round(math.exp(5)),
        lambda vs: max(vs) > 50,
    ),
    ("normal", "normal(10, 2)", is_float, lambda vs: abs(sum(vs) / len(vs) - 10) < 0.2),
    ("qnormal", "qnormal(10, 2, 1)", is_int, lambda vs: abs(sum(vs) / len(vs) - 10) < 0.2),
    ("lognormal-is-positive", "lognormal(0, 1)", lambda v: is_float(v) and v > 0, lambda vs: min(vs) < 1 < max(vs)),
    ("qlognormal", "qlognormal(0, 1, 2)", lambda v: is_int(v) and v % 2 == 0, lambda vs: 0 in vs and 2 in vs),
]


@pytest.mark.parametrize(("text", "each", "whole"), [row[1:] for row in SAMPLES], ids=[row[0] for row in SAMPLES])
def test_sample(text: str, each: Callable[[Scalar], bool], whole: Callable[[list[Any]], bool]) -> None:
    values = draws(text)
    bad = [v for v in values if not each(v)]
    assert not bad, bad[:5]
    assert whole(values)


def test_a_quantized_non_integral_result_stays_a_float() -> None:
    """q = 2.5 is not integral: 5.0 is a float even though it is a whole number."""
    assert {type(v) for v in draws("quniform(0, 10, 2.5)")} == {float}


def test_a_lognormal_far_in_the_tail_saturates_instead_of_raising() -> None:
    e = ParamExpr(kind="lognormal", mu=1000.0, sigma=1.0)
    assert sample(e, random.Random(0)) == math.inf


# ---------------------------------------------------------------------------------------------- all trials
def test_random_trials_follow_the_seed() -> None:
    spec = sweep("random", {"--lr": "loguniform(-6, -1)", "--bs": "choice(16, 32, 64)", "--d": "uniform(0, 0.5)"})
    first = draw_trials(spec, seed=1234)
    assert len(first) == spec.trial_count == 50
    assert all(list(t) == ["--lr", "--bs", "--d"] for t in first)
    assert draw_trials(spec, seed=1234) == first
    assert draw_trials(spec, seed=1235) != first


def test_random_trials_are_drawn_trial_by_trial_in_key_order() -> None:
    """The documented order: per trial, per parameter; a reader can re-draw any trial from the seed."""
    spec = sweep("random", {"--a": "uniform(0, 1)", "--b": "randint(100)"}, runs=3)
    rng = random.Random(7)
    expected = [{"--a": rng.uniform(0, 1), "--b": rng.randrange(100)} for _ in range(3)]
    assert draw_trials(spec, 7) == expected


GRIDS: list[tuple[str, dict[str, str], int, list[dict[str, Any]]]] = [
    # (id, space, max_total_runs, trials)
    (
        "3x2-under-100-runs",
        {"--a": "choice(1, 2, 3)", "--b": "choice('x', 'y')"},
        100,
        [
            {"--a": 1, "--b": "x"},
            {"--a": 1, "--b": "y"},
            {"--a": 2, "--b": "x"},
            {"--a": 2, "--b": "y"},
            {"--a": 3, "--b": "x"},
            {"--a": 3, "--b": "y"},
        ],
    ),
    (
        "cut-at-max-total-runs",
        {"--a": "choice(1, 2, 3)", "--b": "choice('x', 'y')"},
        3,
        [{"--a": 1, "--b": "x"}, {"--a": 1, "--b": "y"}, {"--a": 2, "--b": "x"}],
    ),
    ("one-parameter", {"--a": "choice(range(3))"}, 10, [{"--a": 0}, {"--a": 1}, {"--a": 2}]),
    (
        "key-order-not-alphabetical",
        {"--z": "choice(1, 2)", "--a": "choice(0)"},
        10,
        [{"--z": 1, "--a": 0}, {"--z": 2, "--a": 0}],
    ),
]


@pytest.mark.parametrize(("space", "runs", "trials"), [row[1:] for row in GRIDS], ids=[row[0] for row in GRIDS])
def test_grid_trials(space: dict[str, str], runs: int, trials: list[dict[str, Any]]) -> None:
    spec = sweep("grid", space, runs)
    assert draw_trials(spec, seed=1) == draw_trials(spec, seed=2) == trials
    assert spec.trial_count == len(trials)


def test_grid_3x2_with_100_runs_gives_6_unique_trials() -> None:
    spec = sweep("grid", {"--a": "choice(1, 2, 3)", "--b": "choice(4, 5)"}, 100)
    trials = draw_trials(spec, 0)
    assert len(trials) == 6 == grid_size(spec)
    assert len({tuple(t.items()) for t in trials}) == 6


def test_a_huge_grid_is_not_built_whole() -> None:
    space = {f"--p{i}": "choice(range(100))" for i in range(20)}  # 100**20 points
    spec = sweep("grid", space, 5)
    assert grid_size(spec) == 100**20
    assert [t["--p19"] for t in draw_trials(spec, 0)] == [0, 1, 2, 3, 4]


def test_bayesian_trials_are_not_drawn_in_advance() -> None:
    with pytest.raises(ValueError, match="Optuna"):
        draw_trials(sweep("bayesian", {"--x": "uniform(0, 1)"}), 0)


def test_grid_size_is_for_grids_only() -> None:
    with pytest.raises(ValueError, match="grid"):
        grid_size(sweep("random", {"--x": "choice(1, 2)"}))


def test_draws_are_plain_data() -> None:
    """Trials are written to trials.jsonl: every value encodes as JSON as it is."""
    spec = sweep("random", {"--a": "qnormal(0, 5, 1)", "--b": "choice('s', True, 0.5)"})
    trials = draw_trials(spec, 3)
    assert msgspec.json.decode(msgspec.json.encode(trials)) == trials
