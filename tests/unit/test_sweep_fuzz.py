"""Hypothesis: any hyperdrive block, however wrong, gives a SweepSpec or Problems, never an exception; any
valid spec samples without an exception; the CLI's parse of call strings never evaluates anything."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpc_tf.sweeps.core.parse import parse_sweep
from hpc_tf.sweeps.core.sampling import draw_trials
from hpc_tf.sweeps.core.spec import EXPR_KINDS

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=20)
)
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
call_strings = st.builds(
    lambda kind, args: f"{kind}({', '.join(args)})",
    st.sampled_from([*EXPR_KINDS, "range", "__import__", "eval", "open", "x"]),
    st.lists(st.one_of(st.integers(-9, 9).map(str), st.floats(-9, 9).map(repr), st.text(max_size=6)), max_size=4),
)
keys = st.sampled_from(
    [
        "hyperparameter_sampling",
        "sampling_algorithm",
        "search_space",
        "primary_metric_name",
        "primary_metric_goal",
        "objective",
        "limits",
        "max_total_runs",
        "max_concurrent_runs",
        "max_duration_minutes",
        "policy",
        "early_termination",
        "parameter_space",
        "type",
        "seed",
    ]
)
blocks = st.dictionaries(
    keys, st.one_of(json_like, call_strings, st.dictionaries(st.text(max_size=8), call_strings, max_size=3)), max_size=8
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks)
def test_any_block_gives_a_spec_or_problems(raw: dict[str, Any]) -> None:
    spec, problems = parse_sweep(raw, "hyperdrive", "fuzz.yaml")
    assert (spec is None) == bool(problems)
    for problem in problems:
        assert str(problem.key).startswith("hyperdrive")


valid_space = st.dictionaries(
    st.from_regex(r"--[a-z][a-z0-9-]{0,8}", fullmatch=True),
    st.one_of(
        st.lists(st.integers(-5, 5), min_size=1, max_size=4, unique=True).map(
            lambda v: {"type": "choice", "values": v}
        ),
        st.tuples(st.floats(-5, 0), st.floats(0.1, 5)).map(lambda b: f"uniform({b[0]!r}, {b[1]!r})"),
        st.tuples(st.floats(-8, -1), st.floats(0, 2)).map(lambda b: f"loguniform({b[0]!r}, {b[1]!r})"),
        st.integers(1, 100).map(lambda u: f"randint({u})"),
        st.tuples(st.floats(-1, 1), st.floats(0.01, 3)).map(lambda b: f"qnormal({b[0]!r}, {b[1]!r}, 0.5)"),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(valid_space, st.integers(0, 2**31), st.integers(1, 60))
def test_valid_random_sweeps_sample_reproducibly(space: dict[str, Any], seed: int, runs: int) -> None:
    raw = {
        "hyperparameter_sampling": {"type": "random", "seed": seed, "parameter_space": space},
        "primary_metric_name": "m",
        "primary_metric_goal": "maximize",
        "max_total_runs": runs,
    }
    spec, problems = parse_sweep(raw, "hyperdrive", None)
    assert spec is not None, problems
    trials = draw_trials(spec, seed)
    assert len(trials) == runs and trials == draw_trials(spec, seed)
    for trial in trials:
        assert list(trial) == list(spec.parameter_space)
        assert all(not isinstance(v, float) or math.isfinite(v) for v in trial.values())
