"""`hpc_tf.hyperdrive`: HyperDrive's Python names, validated by the same parser as the config file."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from hpc_tf import hyperdrive as hd
from hpc_tf.core.spec import EstimatorSpec
from hpc_tf.errors import ConfigError, UsageError
from hpc_tf.sweeps.core.parse import parse_sweep
from hpc_tf.sweeps.core.spec import ParamExpr, PolicySpec

EXPRESSIONS: list[tuple[str, Callable[[], dict[str, Any]], dict[str, Any], ParamExpr]] = [
    # (id, the call, the v2 object it returns, the ParamExpr it parses to)
    (
        "choice-values",
        lambda: hd.choice(16, 32, 64),
        {"type": "choice", "values": [16, 32, 64]},
        ParamExpr(kind="choice", values=(16, 32, 64)),
    ),
    (
        "choice-list",
        lambda: hd.choice([16, 32]),
        {"type": "choice", "values": [16, 32]},
        ParamExpr(kind="choice", values=(16, 32)),
    ),
    (
        "choice-tuple",
        lambda: hd.choice(("a", "b")),
        {"type": "choice", "values": ["a", "b"]},
        ParamExpr(kind="choice", values=("a", "b")),
    ),
    (
        "choice-range",
        lambda: hd.choice(range(1, 4)),
        {"type": "choice", "values": [1, 2, 3]},
        ParamExpr(kind="choice", values=(1, 2, 3)),
    ),
    (
        "choice-one",
        lambda: hd.choice("adam"),
        {"type": "choice", "values": ["adam"]},
        ParamExpr(kind="choice", values=("adam",)),
    ),
    ("randint", lambda: hd.randint(5), {"type": "randint", "upper": 5}, ParamExpr(kind="randint", upper=5)),
    (
        "uniform",
        lambda: hd.uniform(0, 1),
        {"type": "uniform", "min_value": 0, "max_value": 1},
        ParamExpr(kind="uniform", low=0.0, high=1.0),
    ),
    (
        "quniform",
        lambda: hd.quniform(0, 100, 5),
        {"type": "quniform", "min_value": 0, "max_value": 100, "q": 5},
        ParamExpr(kind="quniform", low=0.0, high=100.0, q=5.0),
    ),
    (
        "loguniform",
        lambda: hd.loguniform(-6, -1),
        {"type": "loguniform", "min_value": -6, "max_value": -1},
        ParamExpr(kind="loguniform", low=-6.0, high=-1.0),
    ),
    (
        "qloguniform",
        lambda: hd.qloguniform(0, 4, 1),
        {"type": "qloguniform", "min_value": 0, "max_value": 4, "q": 1},
        ParamExpr(kind="qloguniform", low=0.0, high=4.0, q=1.0),
    ),
    (
        "normal",
        lambda: hd.normal(0, 1),
        {"type": "normal", "mu": 0, "sigma": 1},
        ParamExpr(kind="normal", mu=0.0, sigma=1.0),
    ),
    (
        "qnormal",
        lambda: hd.qnormal(10, 2, 1),
        {"type": "qnormal", "mu": 10, "sigma": 2, "q": 1},
        ParamExpr(kind="qnormal", mu=10.0, sigma=2.0, q=1.0),
    ),
    (
        "lognormal",
        lambda: hd.lognormal(0, 1),
        {"type": "lognormal", "mu": 0, "sigma": 1},
        ParamExpr(kind="lognormal", mu=0.0, sigma=1.0),
    ),
    (
        "qlognormal",
        lambda: hd.qlognormal(0, 1, 2),
        {"type": "qlognormal", "mu": 0, "sigma": 1, "q": 2},
        ParamExpr(kind="qlognormal", mu=0.0, sigma=1.0, q=2.0),
    ),
]


def config(space: dict[str, Any] | None = None, **kwargs: Any) -> hd.HyperDriveConfig:
    args: dict[str, Any] = {
        "hyperparameter_sampling": hd.RandomParameterSampling(space or {"--lr": hd.uniform(0, 1)}),
        "primary_metric_name": "val_accuracy",
        "primary_metric_goal": hd.PrimaryMetricGoal.MAXIMIZE,
        "max_total_runs": 10,
    }
    return hd.HyperDriveConfig(**{**args, **kwargs})


@pytest.mark.parametrize(("call", "raw", "expr"), [r[1:] for r in EXPRESSIONS], ids=[r[0] for r in EXPRESSIONS])
def test_expressions(call: Callable[[], dict[str, Any]], raw: dict[str, Any], expr: ParamExpr) -> None:
    assert call() == raw
    assert config({"--x": call()}).spec.parameter_space == {"--x": expr}


SAMPLINGS: list[tuple[str, Any, dict[str, Any]]] = [
    # (id, the sampling object, what its spec says)
    ("random", hd.RandomParameterSampling({"--lr": hd.loguniform(-6, -1)}), {"sampling": "random", "seed": None}),
    ("random-seed", hd.RandomParameterSampling({"--lr": hd.normal(0, 1)}, seed=42), {"sampling": "random", "seed": 42}),
    (
        "grid",
        hd.GridParameterSampling({"--a": hd.choice(1, 2, 3), "--b": hd.choice("x", "y")}),
        {"sampling": "grid", "trial_count": 6},
    ),
    ("bayesian", hd.BayesianParameterSampling({"--lr": hd.uniform(0, 1)}), {"sampling": "bayesian", "seed": None}),
    ("call-strings", hd.RandomParameterSampling({"--lr": "loguniform(-6, -1)"}), {"sampling": "random"}),
    (
        "v2-name",
        hd.RandomParameterSampling({"lr": hd.uniform(0, 1)}),
        {"parameter_space": {"--lr": ParamExpr(kind="uniform", low=0.0, high=1.0)}},
    ),
    ("a-mapping", {"type": "grid", "parameter_space": {"--a": "choice(1, 2)"}}, {"sampling": "grid", "trial_count": 2}),
]


@pytest.mark.parametrize(("sampling", "fields"), [r[1:] for r in SAMPLINGS], ids=[r[0] for r in SAMPLINGS])
def test_samplings(sampling: Any, fields: dict[str, Any]) -> None:
    spec = config(hyperparameter_sampling=sampling).spec
    for name, value in fields.items():
        assert getattr(spec, name) == value


POLICIES: list[tuple[str, Any, PolicySpec | None]] = [
    ("none", None, None),
    ("no-termination", hd.NoTerminationPolicy(), None),
    ("bandit-factor", hd.BanditPolicy(slack_factor=0.1), PolicySpec(type="bandit", slack_factor=0.1)),
    (
        "bandit-all",
        hd.BanditPolicy(evaluation_interval=2, slack_amount=0.2, delay_evaluation=5),
        PolicySpec(type="bandit", evaluation_interval=2, slack_amount=0.2, delay_evaluation=5),
    ),
    ("median", hd.MedianStoppingPolicy(), PolicySpec(type="median_stopping")),
    (
        "median-all",
        hd.MedianStoppingPolicy(evaluation_interval=1, delay_evaluation=5),
        PolicySpec(type="median_stopping", delay_evaluation=5),
    ),
    ("truncation", hd.TruncationSelectionPolicy(20), PolicySpec(type="truncation_selection", truncation_percentage=20)),
    (
        "truncation-all",
        hd.TruncationSelectionPolicy(truncation_percentage=10, evaluation_interval=3, delay_evaluation=1),
        PolicySpec(type="truncation_selection", truncation_percentage=10, evaluation_interval=3, delay_evaluation=1),
    ),
    ("a-mapping", {"type": "bandit", "slack_factor": 0.3}, PolicySpec(type="bandit", slack_factor=0.3)),
]


@pytest.mark.parametrize(("policy", "expected"), [r[1:] for r in POLICIES], ids=[r[0] for r in POLICIES])
def test_policies(policy: Any, expected: PolicySpec | None) -> None:
    assert config(policy=policy).spec.policy == expected


def test_the_arguments_are_kept_with_hyperdrives_names() -> None:
    sampling, policy = hd.RandomParameterSampling({"--lr": hd.uniform(0, 1)}, seed=3), hd.BanditPolicy(slack_factor=0.1)
    made = config(
        hyperparameter_sampling=sampling,
        primary_metric_goal=hd.PrimaryMetricGoal.MINIMIZE,
        max_concurrent_runs=2,
        max_duration_minutes=30,
        policy=policy,
    )
    assert (made.hyperparameter_sampling, made.policy, made.estimator) == (sampling, policy, None)
    spec = made.spec
    assert (spec.primary_metric_goal, spec.max_concurrent_runs, spec.max_duration_minutes, spec.seed) == (
        "minimize",
        2,
        30,
        3,
    )
    assert hd.PrimaryMetricGoal.MAXIMIZE == "maximize" and hd.PrimaryMetricGoal.MINIMIZE == "minimize"


ROUND_TRIPS = [r[0] for r in SAMPLINGS] + [f"policy-{r[0]}" for r in POLICIES]


@pytest.mark.parametrize(
    "made",
    [config(hyperparameter_sampling=r[1]) for r in SAMPLINGS]
    + [config(policy=r[1], max_concurrent_runs=3) for r in POLICIES],
    ids=ROUND_TRIPS,
)
def test_to_raw_reads_back_as_the_same_spec(made: hd.HyperDriveConfig) -> None:
    raw = made.to_raw()
    assert parse_sweep(raw, "hyperdrive", None) == (made.spec, [])
    assert hd.HyperDriveConfig(**{k: raw[k] for k in raw}).spec == made.spec  # the plain dict works as arguments


ERRORS: list[tuple[str, dict[str, Any], str, str]] = [
    # (id, arguments changed, the problem's key, a word the message holds)
    (
        "grid-with-uniform",
        {"hyperparameter_sampling": hd.GridParameterSampling({"--a": hd.uniform(0, 1)})},
        "hyperdrive.hyperparameter_sampling.parameter_space.--a",
        "grid sampling takes only choice",
    ),
    (
        "bayesian-with-normal",
        {"hyperparameter_sampling": hd.BayesianParameterSampling({"--a": hd.normal(0, 1)})},
        "hyperdrive.hyperparameter_sampling.parameter_space.--a",
        "bayesian sampling takes only",
    ),
    (
        "bad-expression",
        {"hyperparameter_sampling": hd.RandomParameterSampling({"--a": hd.uniform(1, 0)})},
        "hyperdrive.hyperparameter_sampling.parameter_space.--a.max_value",
        "greater than min_value",
    ),
    (
        "empty-choice",
        {"hyperparameter_sampling": hd.RandomParameterSampling({"--a": hd.choice()})},
        "hyperdrive.hyperparameter_sampling.parameter_space.--a.values",
        "non-empty",
    ),
    (
        "empty-space",
        {"hyperparameter_sampling": hd.RandomParameterSampling({})},
        "hyperdrive.hyperparameter_sampling.parameter_space",
        "at least one",
    ),
    (
        "not-a-sampling",
        {"hyperparameter_sampling": ["--lr"]},
        "hyperdrive.hyperparameter_sampling",
        "RandomParameterSampling, GridParameterSampling or BayesianParameterSampling",
    ),
    ("goal", {"primary_metric_goal": "largest"}, "hyperdrive.primary_metric_goal", "'maximize', 'minimize'"),
    ("metric", {"primary_metric_name": ""}, "hyperdrive.primary_metric_name", "non-empty"),
    ("total-runs", {"max_total_runs": 0}, "hyperdrive.max_total_runs", "1 to 100000"),
    ("total-runs-bool", {"max_total_runs": True}, "hyperdrive.max_total_runs", "integer"),
    ("concurrent", {"max_concurrent_runs": 11}, "hyperdrive.max_concurrent_runs", "1 to 10"),
    ("duration", {"max_duration_minutes": 0}, "hyperdrive.max_duration_minutes", "≥ 1"),
    ("bandit-neither", {"policy": hd.BanditPolicy()}, "hyperdrive.policy.slack_factor", "exactly one"),
    (
        "bandit-both",
        {"policy": hd.BanditPolicy(slack_factor=0.1, slack_amount=0.1)},
        "hyperdrive.policy.slack_factor",
        "exactly one",
    ),
    (
        "truncation-100",
        {"policy": hd.TruncationSelectionPolicy(100)},
        "hyperdrive.policy.truncation_percentage",
        "1 to 99",
    ),
    ("not-a-policy", {"policy": "bandit"}, "hyperdrive.policy", "BanditPolicy, MedianStoppingPolicy"),
]


@pytest.mark.parametrize(("changes", "key", "words"), [r[1:] for r in ERRORS], ids=[r[0] for r in ERRORS])
def test_errors_are_raised_at_once(changes: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config(**changes)
    found = [p for p in caught.value.problems if p.key == key]
    assert found and words in found[0].message, caught.value.problems
    assert all(p.source == "HyperDriveConfig(...)" for p in caught.value.problems)
    assert len({p.key for p in caught.value.problems}) == len(caught.value.problems)  # no duplicate reports


def test_every_problem_is_listed() -> None:
    with pytest.raises(ConfigError) as caught:
        config(max_total_runs=0, primary_metric_goal="up", policy=hd.BanditPolicy())
    assert {p.key for p in caught.value.problems} == {
        "hyperdrive.max_total_runs",
        "hyperdrive.primary_metric_goal",
        "hyperdrive.policy.slack_factor",
    }


def test_the_estimator_is_kept() -> None:
    from hpc_tf.api import TensorFlow

    estimator = TensorFlow.from_spec(EstimatorSpec(source_directory="/src", entry_script="train.py"))
    assert config(estimator=estimator).estimator is estimator


def test_an_estimator_must_be_a_tensorflow_estimator() -> None:
    with pytest.raises(UsageError, match="TensorFlow"):
        config(estimator="train.py")


def test_the_module_does_not_import_the_api() -> None:
    """api.Experiment.submit imports hyperdrive; the other way round would be an import cycle."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(hd))
    names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "api" not in names and "hpc_tf.api" not in names
