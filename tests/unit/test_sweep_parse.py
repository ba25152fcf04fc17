"""`core.sweep_parse`: the `hyperdrive:` block → SweepSpec, every problem named by the dotted key the user
wrote, the bad value, and what is allowed.

Each table row states the whole input that differs from a valid base block, so a row reads as the
config a user would write.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hpc_tf.errors import MISSING, Problem
from hpc_tf.sweeps.core.parse import parse_sweep, sweep_to_raw
from hpc_tf.sweeps.core.spec import EXPR_KINDS, ParamExpr, PolicySpec, SweepSpec

SPACE = "hyperdrive.hyperparameter_sampling.parameter_space"
BASE: dict[str, Any] = {
    "hyperparameter_sampling": {"type": "random", "parameter_space": {"--lr": "uniform(0, 1)"}},
    "primary_metric_name": "val_accuracy",
    "primary_metric_goal": "maximize",
    "max_total_runs": 10,
}
BASE_SPEC = SweepSpec(
    sampling="random",
    parameter_space={"--lr": ParamExpr(kind="uniform", low=0.0, high=1.0)},
    primary_metric_name="val_accuracy",
    primary_metric_goal="maximize",
    max_total_runs=10,
)


def block(**changes: Any) -> dict[str, Any]:
    """BASE with top-level keys replaced (a value of MISSING removes the key)."""
    out = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is MISSING:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def space(expr: Any, name: str = "--lr", kind: str = "random") -> dict[str, Any]:
    return block(hyperparameter_sampling={"type": kind, "parameter_space": {name: expr}})


def parsed(raw: Any) -> SweepSpec:
    spec, problems = parse_sweep(raw, "hyperdrive", "sweep.yaml")
    assert problems == [], "\n".join(map(str, problems))
    assert spec is not None
    return spec


def problems_of(raw: Any, key: str = "hyperdrive") -> list[Problem]:
    spec, problems = parse_sweep(raw, key, "sweep.yaml")
    assert spec is None and problems
    assert all(p.source == "sweep.yaml" for p in problems)
    return problems


def the_problem(raw: Any, key: str) -> Problem:
    found = [p for p in problems_of(raw) if p.key == key]
    assert found, f"no problem at {key}: " + "; ".join(map(str, problems_of(raw)))
    return found[0]


def test_the_base_block_is_valid() -> None:
    assert parsed(BASE) == BASE_SPEC


# ---------------------------------------------------------------------------------------------- expressions
def E(kind: str, **fields: Any) -> ParamExpr:
    return ParamExpr(kind=kind, **fields)  # type: ignore[arg-type]


EXPRESSIONS: list[tuple[str, Any, ParamExpr]] = [
    # (id, the expression as written, the ParamExpr)
    ("choice-call-values", "choice(16, 32, 64)", E("choice", values=(16, 32, 64))),
    ("choice-call-list", "choice([16, 32, 64])", E("choice", values=(16, 32, 64))),
    ("choice-call-tuple", "choice((1, 2))", E("choice", values=(1, 2))),
    ("choice-call-range", "choice(range(1, 5))", E("choice", values=(1, 2, 3, 4))),
    ("choice-call-range-step", "choice(range(0, 10, 5))", E("choice", values=(0, 5))),
    ("choice-call-mixed", "choice('adam', -1, 0.5, True)", E("choice", values=("adam", -1, 0.5, True))),
    ("choice-call-single", "choice('sgd')", E("choice", values=("sgd",))),
    ("choice-object", {"type": "choice", "values": [16, 32]}, E("choice", values=(16, 32))),
    ("choice-object-type-case", {"type": "Choice", "values": ["a"]}, E("choice", values=("a",))),
    ("randint-call", "randint(10)", E("randint", upper=10)),
    ("randint-call-keyword", "randint(upper=3)", E("randint", upper=3)),
    ("randint-object", {"type": "randint", "upper": 10}, E("randint", upper=10)),
    ("uniform-call", "uniform(0, 0.5)", E("uniform", low=0.0, high=0.5)),
    ("uniform-call-keywords", "uniform(max_value=2, min_value=-1)", E("uniform", low=-1.0, high=2.0)),
    ("uniform-object", {"type": "uniform", "min_value": 0.0, "max_value": 0.5}, E("uniform", low=0.0, high=0.5)),
    ("quniform-call", "quniform(0, 100, 5)", E("quniform", low=0.0, high=100.0, q=5.0)),
    ("quniform-call-q-keyword", "quniform(0, 100, q=5)", E("quniform", low=0.0, high=100.0, q=5.0)),
    (
        "quniform-object",
        {"type": "quniform", "min_value": 0, "max_value": 100, "q": 5},
        E("quniform", low=0.0, high=100.0, q=5.0),
    ),
    ("loguniform-call", "loguniform(-6, -1)", E("loguniform", low=-6.0, high=-1.0)),
    (
        "loguniform-object",
        {"type": "loguniform", "min_value": -6, "max_value": -1},
        E("loguniform", low=-6.0, high=-1.0),
    ),
    ("qloguniform-call", "qloguniform(0, 5, 1)", E("qloguniform", low=0.0, high=5.0, q=1.0)),
    (
        "qloguniform-object",
        {"type": "qloguniform", "min_value": 0, "max_value": 5, "q": 1},
        E("qloguniform", low=0.0, high=5.0, q=1.0),
    ),
    ("normal-call", "normal(0, 1)", E("normal", mu=0.0, sigma=1.0)),
    ("normal-object", {"type": "normal", "mu": 0, "sigma": 1}, E("normal", mu=0.0, sigma=1.0)),
    ("qnormal-call", "qnormal(10, 2, 1)", E("qnormal", mu=10.0, sigma=2.0, q=1.0)),
    ("qnormal-object", {"type": "qnormal", "mu": 10, "sigma": 2, "q": 1}, E("qnormal", mu=10.0, sigma=2.0, q=1.0)),
    ("lognormal-call", "lognormal(0, 1)", E("lognormal", mu=0.0, sigma=1.0)),
    ("lognormal-object", {"type": "lognormal", "mu": 0, "sigma": 1}, E("lognormal", mu=0.0, sigma=1.0)),
    ("qlognormal-call", "qlognormal(0, 1, 2)", E("qlognormal", mu=0.0, sigma=1.0, q=2.0)),
    (
        "qlognormal-object",
        {"type": "qlognormal", "mu": 0, "sigma": 1, "q": 2},
        E("qlognormal", mu=0.0, sigma=1.0, q=2.0),
    ),
    ("call-with-spaces", "  uniform( -1 , +1 ) ", E("uniform", low=-1.0, high=1.0)),
]


@pytest.mark.parametrize(("raw", "expected"), [row[1:] for row in EXPRESSIONS], ids=[row[0] for row in EXPRESSIONS])
def test_expressions(raw: Any, expected: ParamExpr) -> None:
    assert parsed(space(raw)).parameter_space == {"--lr": expected}


def test_every_kind_is_covered_in_both_forms() -> None:
    calls = {r[1].strip().split("(")[0] for r in EXPRESSIONS if isinstance(r[1], str)}
    objects = {r[1]["type"].lower() for r in EXPRESSIONS if isinstance(r[1], dict)}
    assert calls == objects == set(EXPR_KINDS)


@pytest.mark.parametrize("row", EXPRESSIONS, ids=[row[0] for row in EXPRESSIONS])
def test_text_reads_back_as_the_same_expression(row: tuple[str, Any, ParamExpr]) -> None:
    """ParamExpr.text() is the HyperDrive call string: it must parse back to itself."""
    expr = row[2]
    assert parsed(space(expr.text())).parameter_space["--lr"] == expr


BAD_EXPRESSIONS: list[tuple[str, Any, str, list[str]]] = [
    # (id, the expression, where the problem is (after the parameter's key), words the message must hold)
    ("not-a-call", "0.1", "", ["call of one of", "choice", "qlognormal"]),
    ("unknown-function", "beta(1, 2)", "", ["call of one of", "loguniform"]),
    ("eval-is-never-run", "__import__('os').system('true')", "", ["call of one of"]),
    ("syntax-error", "choice(1, 2", "", ["call of one of"]),
    ("name-argument", "choice(adam, sgd)", "", ["literals", "quoted"]),
    ("expression-argument", "uniform(0, 1 + 1)", "", ["literals"]),
    ("nested-call", "choice(len('ab'))", "", ["literals"]),
    ("list-not-alone", "choice([1, 2], 3)", "", ["literals"]),
    ("nested-list", "choice([[1], [2]])", "", ["literals"]),
    ("none-value", "choice(None)", "", ["literals"]),
    ("range-of-floats", "choice(range(0.5))", "", ["range", "integer"]),
    ("range-step-zero", "choice(range(0, 5, 0))", "", ["step"]),
    ("range-too-long", "choice(range(10**9))", "", ["literals"]),
    ("range-over-limit", "choice(range(1000000))", "", ["at most 10000"]),
    ("empty-choice", "choice()", "", ["non-empty"]),
    ("empty-choice-list", {"type": "choice", "values": []}, ".values", ["non-empty"]),
    ("duplicate-choice", "choice(1, 2, 1)", "", ["distinct", "duplicate"]),
    ("duplicate-int-float", "choice(1, 1.0)", "", ["duplicate"]),
    ("choice-of-mapping", {"type": "choice", "values": [{"a": 1}]}, ".values", ["strings", "numbers"]),
    ("choice-not-a-list", {"type": "choice", "values": 3}, ".values", ["list"]),
    ("choice-nan", {"type": "choice", "values": [float("nan")]}, ".values", ["finite"]),
    ("choice-newline", {"type": "choice", "values": ["a\nb"]}, ".values", ["newline"]),
    ("choice-keyword", "choice(values=[1])", "", ["no keyword"]),
    ("randint-zero", "randint(0)", "", ["integer", "≥ 1"]),
    ("randint-float", "randint(2.5)", "", ["integer"]),
    ("randint-bool", {"type": "randint", "upper": True}, ".upper", ["integer"]),
    ("randint-missing", {"type": "randint"}, ".upper", ["needs upper"]),
    ("too-many-arguments", "uniform(0, 1, 2)", "", ["2 arguments", "min_value, max_value"]),
    ("too-few-arguments", "uniform(0)", "", ["needs max_value"]),
    ("unknown-keyword", "uniform(0, high=1)", "", ["min_value, max_value", "high="]),
    ("repeated-keyword", "uniform(0, 1, min_value=0)", "", ["min_value"]),
    ("low-not-below-high", "uniform(1, 1)", "", ["greater than min_value"]),
    ("low-above-high-object", {"type": "uniform", "min_value": 2, "max_value": 1}, ".max_value", ["greater"]),
    ("bool-is-not-a-number", {"type": "uniform", "min_value": False, "max_value": 1}, ".min_value", ["number"]),
    ("string-is-not-a-number", "uniform('0', 1)", "", ["finite number"]),
    ("infinite-bound", {"type": "uniform", "min_value": 0, "max_value": float("inf")}, ".max_value", ["finite"]),
    ("huge-int-bound", "uniform(0, 10**400)", "", ["literals"]),
    ("huge-int-literal", "uniform(0, " + "9" * 400 + ")", "", ["finite number"]),
    ("loguniform-not-log-space", "loguniform(0.000001, 1000)", "", ["log space", "loguniform(-6, -1)"]),
    ("quniform-q-zero", "quniform(0, 10, 0)", "", ["> 0"]),
    ("quniform-q-negative", {"type": "quniform", "min_value": 0, "max_value": 1, "q": -1}, ".q", ["> 0"]),
    ("quniform-q-missing", {"type": "quniform", "min_value": 0, "max_value": 1}, ".q", ["needs q"]),
    ("normal-sigma-zero", "normal(0, 0)", "", ["> 0", "sigma"]),
    ("lognormal-sigma-negative", {"type": "lognormal", "mu": 0, "sigma": -1}, ".sigma", ["> 0"]),
    ("object-unknown-type", {"type": "gamma"}, ".type", ["choice", "qlognormal"]),
    ("object-without-type", {"values": [1]}, ".type", ["choice", "uniform"]),
    ("object-unknown-field", {"type": "uniform", "min_value": 0, "max_value": 1, "low": 0}, ".low", ["unknown key"]),
    (
        "object-v1-field-hint",
        {"type": "uniform", "min_value": 0, "max_value": 1, "min_val": 0},
        ".min_val",
        ["min_value"],
    ),
    ("fixed-value", 0.1, "", ["expression", "script_params"]),
    ("fixed-list", [1, 2], "", ["expression"]),
    ("too-long-text", "choice(" + "1, " * 5000 + "1)", "", ["at most 10000 characters"]),
]


@pytest.mark.parametrize(
    ("raw", "where", "words"), [row[1:] for row in BAD_EXPRESSIONS], ids=[row[0] for row in BAD_EXPRESSIONS]
)
def test_bad_expressions(raw: Any, where: str, words: list[str]) -> None:
    problem = the_problem(space(raw), f"{SPACE}.--lr{where}")
    for word in words:
        assert word in problem.message, str(problem)
    assert problem.value is not MISSING or "needs" in problem.message


def test_a_v2_search_space_names_its_own_path() -> None:
    raw = block(hyperparameter_sampling=MISSING, sampling_algorithm="random", search_space={"lr": "uniform(1, 0)"})
    assert the_problem(raw, "hyperdrive.search_space.lr").message.startswith("max_value must be greater")


# ---------------------------------------------------------------------------------------------- parameter names
FLAGS: list[tuple[str, str, str]] = [
    # (id, name as written, stored flag)
    ("double-dash", "--learning-rate", "--learning-rate"),
    ("single-dash", "-lr", "-lr"),
    ("v2-name", "lr", "--lr"),
    ("v2-name-underscore", "batch_size", "--batch_size"),
    ("dots", "--model.depth", "--model.depth"),
    ("digit-first", "--3d", "--3d"),
]


@pytest.mark.parametrize(("name", "flag"), [row[1:] for row in FLAGS], ids=[row[0] for row in FLAGS])
def test_parameter_names_are_script_flags(name: str, flag: str) -> None:
    assert list(parsed(space("choice(1, 2)", name=name)).parameter_space) == [flag]


BAD_NAMES: list[tuple[str, Any]] = [
    ("space", "--learning rate"),
    ("equals", "--lr=0.1"),
    ("three-dashes", "---lr"),
    ("dash-only", "--"),
    ("dash-then-underscore", "--_lr"),
    ("empty", ""),
    ("not-a-string", 3),
    ("newline", "--lr\n"),
]


@pytest.mark.parametrize("name", [row[1] for row in BAD_NAMES], ids=[row[0] for row in BAD_NAMES])
def test_bad_parameter_names(name: Any) -> None:
    problem = the_problem(space("choice(1, 2)", name=name), f"{SPACE}.{name}")
    assert "script flag" in problem.message and problem.value == name


def test_a_name_and_its_flag_are_the_same_parameter() -> None:
    raw = block(
        hyperparameter_sampling={"type": "random", "parameter_space": {"lr": "randint(2)", "--lr": "randint(3)"}}
    )
    assert "same flag --lr" in the_problem(raw, f"{SPACE}.--lr").message


def test_parameter_order_is_kept() -> None:
    names = ["--c", "--a", "--b"]
    raw = block(hyperparameter_sampling={"type": "grid", "parameter_space": {n: "choice(1)" for n in names}})
    assert list(parsed(raw).parameter_space) == names


def test_at_most_100_parameters() -> None:
    many = {f"--p{i}": "randint(2)" for i in range(101)}
    assert (
        "at most 100"
        in the_problem(
            space(None) | {"hyperparameter_sampling": {"type": "random", "parameter_space": many}}, SPACE
        ).message
    )
    assert (
        len(
            parsed(
                block(hyperparameter_sampling={"type": "random", "parameter_space": dict(list(many.items())[:100])})
            ).parameter_space
        )
        == 100
    )


# ---------------------------------------------------------------------------------------------- v1 and v2 names
V2: dict[str, Any] = {
    "sampling_algorithm": {"type": "random", "seed": 7, "rule": "random"},
    "search_space": {"lr": {"type": "loguniform", "min_value": -6, "max_value": -1}, "--bs": "choice(16, 32)"},
    "objective": {"primary_metric": "loss", "goal": "minimize"},
    "limits": {"max_total_trials": 20, "max_concurrent_trials": 4, "timeout": 3601},
    "early_termination": {"type": "median_stopping", "evaluation_interval": 2, "delay_evaluation": 5},
}
V2_SPEC = SweepSpec(
    sampling="random",
    seed=7,
    parameter_space={
        "--lr": ParamExpr(kind="loguniform", low=-6.0, high=-1.0),
        "--bs": ParamExpr(kind="choice", values=(16, 32)),
    },
    primary_metric_name="loss",
    primary_metric_goal="minimize",
    max_total_runs=20,
    max_concurrent_runs=4,
    max_duration_minutes=61,  # 3601 s, rounded up
    policy=PolicySpec(type="median_stopping", evaluation_interval=2, delay_evaluation=5),
)


def test_v2_names_give_the_same_spec_as_v1_names() -> None:
    v1 = {
        "hyperparameter_sampling": {
            "type": "random",
            "seed": 7,
            "parameter_space": {"--lr": "loguniform(-6, -1)", "--bs": {"type": "choice", "values": [16, 32]}},
        },
        "primary_metric_name": "loss",
        "primary_metric_goal": "minimize",
        "max_total_runs": 20,
        "max_concurrent_runs": 4,
        "max_duration_minutes": 61,
        "policy": {"type": "median_stopping", "evaluation_interval": 2, "delay_evaluation": 5},
    }
    assert parsed(V2) == parsed(v1) == V2_SPEC


ALIAS_ROWS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # (id, keys replacing BASE's, SweepSpec fields that differ from BASE_SPEC)
    (
        "sampling-algorithm-string",
        {"hyperparameter_sampling": MISSING, "sampling_algorithm": "grid", "search_space": {"x": "choice(1, 2)"}},
        {"sampling": "grid", "parameter_space": {"--x": ParamExpr(kind="choice", values=(1, 2))}},
    ),
    (
        "sampling-algorithm-mapping",
        {
            "hyperparameter_sampling": MISSING,
            "sampling_algorithm": {"type": "bayesian", "seed": 3},
            "search_space": {"--lr": "uniform(0, 1)"},
        },
        {"sampling": "bayesian", "seed": 3},
    ),
    (
        "sampling-class-name",
        {"hyperparameter_sampling": {"type": "RandomParameterSampling", "parameter_space": {"--lr": "uniform(0, 1)"}}},
        {},
    ),
    (
        "sampling-type-case",
        {"hyperparameter_sampling": {"type": "Random", "seed": 0, "parameter_space": {"--lr": "uniform(0, 1)"}}},
        {"seed": 0},
    ),
    (
        "objective-only-metric",
        {"primary_metric_name": MISSING, "objective": {"primary_metric": "acc"}},
        {"primary_metric_name": "acc"},
    ),
    (
        "objective-only-goal",
        {"primary_metric_goal": MISSING, "objective": {"goal": "Minimize"}},
        {"primary_metric_goal": "minimize"},
    ),
    ("limits-total", {"max_total_runs": MISSING, "limits": {"max_total_trials": 5}}, {"max_total_runs": 5}),
    ("limits-concurrent", {"limits": {"max_concurrent_trials": 2}}, {"max_concurrent_runs": 2}),
    ("limits-timeout-rounds-up", {"limits": {"timeout": 61}}, {"max_duration_minutes": 2}),
    ("limits-timeout-exact", {"limits": {"timeout": 120}}, {"max_duration_minutes": 2}),
    ("limits-timeout-under-a-minute", {"limits": {"timeout": 0.5}}, {"max_duration_minutes": 1}),
    (
        "early-termination",
        {"early_termination": {"type": "bandit", "slack_amount": 0.1}},
        {"policy": PolicySpec(type="bandit", slack_amount=0.1)},
    ),
    ("goal-upper", {"primary_metric_goal": "MAXIMIZE"}, {}),
    ("goal-class-text", {"primary_metric_goal": "PrimaryMetricGoal.MINIMIZE"}, {"primary_metric_goal": "minimize"}),
    ("goal-spaces", {"primary_metric_goal": " minimize "}, {"primary_metric_goal": "minimize"}),
    ("concurrent-null", {"max_concurrent_runs": None}, {}),
    ("concurrent-equal-total", {"max_concurrent_runs": 10}, {"max_concurrent_runs": 10}),
    ("duration", {"max_duration_minutes": 1}, {"max_duration_minutes": 1}),
    ("total-max", {"max_total_runs": 100000}, {"max_total_runs": 100000}),
    (
        "seed-zero",
        {"hyperparameter_sampling": {"type": "random", "seed": 0, "parameter_space": {"--lr": "uniform(0, 1)"}}},
        {"seed": 0},
    ),
    (
        "seed-max",
        {
            "hyperparameter_sampling": {
                "type": "random",
                "seed": 2**32 - 1,
                "parameter_space": {"--lr": "uniform(0, 1)"},
            }
        },
        {"seed": 2**32 - 1},
    ),
]


@pytest.mark.parametrize(("changes", "fields"), [row[1:] for row in ALIAS_ROWS], ids=[row[0] for row in ALIAS_ROWS])
def test_aliases_and_spellings(changes: dict[str, Any], fields: dict[str, Any]) -> None:
    import msgspec

    assert parsed(block(**changes)) == msgspec.structs.replace(BASE_SPEC, **fields)


POLICIES: list[tuple[str, Any, PolicySpec | None]] = [
    # (id, the policy block, the PolicySpec)
    ("null", None, None),
    ("none-text", "none", None),
    ("no-termination-class", "NoTerminationPolicy", None),
    ("type-none", {"type": "none"}, None),
    ("type-null", {"type": None}, None),
    ("bandit-factor", {"type": "bandit", "slack_factor": 0.2}, PolicySpec(type="bandit", slack_factor=0.2)),
    ("bandit-amount-int", {"type": "bandit", "slack_amount": 1}, PolicySpec(type="bandit", slack_amount=1.0)),
    (
        "bandit-class",
        {"type": "BanditPolicy", "slack_factor": 0.1, "evaluation_interval": 2, "delay_evaluation": 4},
        PolicySpec(type="bandit", slack_factor=0.1, evaluation_interval=2, delay_evaluation=4),
    ),
    (
        "bandit-null-amount",
        {"type": "bandit", "slack_factor": 0.1, "slack_amount": None},
        PolicySpec(type="bandit", slack_factor=0.1),
    ),
    ("median", {"type": "median_stopping"}, PolicySpec(type="median_stopping")),
    ("median-text", "median_stopping", PolicySpec(type="median_stopping")),
    (
        "median-class",
        {"type": "MedianStoppingPolicy", "delay_evaluation": 5},
        PolicySpec(type="median_stopping", delay_evaluation=5),
    ),
    (
        "truncation",
        {"type": "truncation_selection", "truncation_percentage": 20},
        PolicySpec(type="truncation_selection", truncation_percentage=20),
    ),
    (
        "truncation-class",
        {"type": "TruncationSelectionPolicy", "truncation_percentage": 99},
        PolicySpec(type="truncation_selection", truncation_percentage=99),
    ),
    (
        "truncation-1",
        {"type": "truncation_selection", "truncation_percentage": 1},
        PolicySpec(type="truncation_selection", truncation_percentage=1),
    ),
]


@pytest.mark.parametrize(("policy", "expected"), [row[1:] for row in POLICIES], ids=[row[0] for row in POLICIES])
def test_policies(policy: Any, expected: PolicySpec | None) -> None:
    assert parsed(block(policy=policy)).policy == expected


# ---------------------------------------------------------------------------------------------- errors
P = "hyperdrive.policy"
H = "hyperdrive.hyperparameter_sampling"
ERRORS: list[tuple[str, dict[str, Any], str, list[str]]] = [
    # (id, keys replacing BASE's, the key of the problem, words its message must hold)
    (
        "unknown-top-key",
        {"max_total_run": 3},
        "hyperdrive.max_total_run",
        ["unknown key", "did you mean 'max_total_runs'"],
    ),
    ("unknown-top-key-no-guess", {"zzz": 1}, "hyperdrive.zzz", ["unknown key", "valid keys", "policy"]),
    ("v2-trial-block", {"trial": {}}, "hyperdrive.trial", ["unknown key"]),
    ("sampling-missing", {"hyperparameter_sampling": MISSING}, H, ["is required", "sampling_algorithm"]),
    ("sampling-not-mapping", {"hyperparameter_sampling": "random"}, H, ["mapping", "parameter_space"]),
    (
        "sampling-type-missing",
        {"hyperparameter_sampling": {"parameter_space": {"--x": "randint(2)"}}},
        f"{H}.type",
        ["required", "random, grid or bayesian"],
    ),
    (
        "sampling-type-unknown",
        {"hyperparameter_sampling": {"type": "sobol", "parameter_space": {"--x": "randint(2)"}}},
        f"{H}.type",
        ["random, grid, bayesian"],
    ),
    (
        "sampling-unknown-key",
        {"hyperparameter_sampling": {"type": "random", "parameter_spaces": {}}},
        f"{H}.parameter_spaces",
        ["did you mean 'parameter_space'"],
    ),
    ("space-missing", {"hyperparameter_sampling": {"type": "random"}}, f"{H}.parameter_space", ["is required", "--lr"]),
    (
        "space-empty",
        {"hyperparameter_sampling": {"type": "random", "parameter_space": {}}},
        f"{H}.parameter_space",
        ["at least one"],
    ),
    (
        "space-not-mapping",
        {"hyperparameter_sampling": {"type": "random", "parameter_space": ["--lr"]}},
        f"{H}.parameter_space",
        ["mapping"],
    ),
    (
        "seed-negative",
        {"hyperparameter_sampling": {"type": "random", "seed": -1, "parameter_space": {"--x": "randint(2)"}}},
        f"{H}.seed",
        ["integer from 0 to 4294967295"],
    ),
    (
        "seed-text",
        {"hyperparameter_sampling": {"type": "random", "seed": "1", "parameter_space": {"--x": "randint(2)"}}},
        f"{H}.seed",
        ["integer"],
    ),
    (
        "seed-bool",
        {"hyperparameter_sampling": {"type": "random", "seed": True, "parameter_space": {"--x": "randint(2)"}}},
        f"{H}.seed",
        ["integer"],
    ),
    (
        "seed-too-big",
        {"hyperparameter_sampling": {"type": "random", "seed": 2**32, "parameter_space": {"--x": "randint(2)"}}},
        f"{H}.seed",
        ["4294967295"],
    ),
    (
        "seed-with-grid",
        {"hyperparameter_sampling": {"type": "grid", "seed": 1, "parameter_space": {"--x": "choice(1)"}}},
        f"{H}.seed",
        ["random or bayesian"],
    ),
    (
        "rule-sobol",
        {
            "hyperparameter_sampling": MISSING,
            "sampling_algorithm": {"type": "random", "rule": "sobol"},
            "search_space": {"x": "randint(2)"},
        },
        "hyperdrive.sampling_algorithm.rule",
        ["sobol", "not supported", "'random'"],
    ),
    (
        "rule-unknown",
        {
            "hyperparameter_sampling": MISSING,
            "sampling_algorithm": {"type": "random", "rule": "halton"},
            "search_space": {"x": "randint(2)"},
        },
        "hyperdrive.sampling_algorithm.rule",
        ["'random'"],
    ),
    (
        "rule-with-grid",
        {
            "hyperparameter_sampling": MISSING,
            "sampling_algorithm": {"type": "grid", "rule": "random"},
            "search_space": {"x": "choice(1)"},
        },
        "hyperdrive.sampling_algorithm.rule",
        ["only used with random"],
    ),
    (
        "sampling-algorithm-bad-string",
        {"hyperparameter_sampling": MISSING, "sampling_algorithm": "hyperband", "search_space": {"x": "randint(2)"}},
        "hyperdrive.sampling_algorithm",
        ["random, grid, bayesian"],
    ),
    (
        "sampling-algorithm-unknown-key",
        {
            "hyperparameter_sampling": MISSING,
            "sampling_algorithm": {"type": "random", "sed": 1},
            "search_space": {"x": "randint(2)"},
        },
        "hyperdrive.sampling_algorithm.sed",
        ["did you mean 'seed'"],
    ),
    (
        "search-space-missing",
        {"hyperparameter_sampling": MISSING, "sampling_algorithm": "random"},
        "hyperdrive.search_space",
        ["is required"],
    ),
    (
        "metric-missing",
        {"primary_metric_name": MISSING},
        "hyperdrive.primary_metric_name",
        ["is required", "objective.primary_metric"],
    ),
    ("metric-empty", {"primary_metric_name": " "}, "hyperdrive.primary_metric_name", ["non-empty"]),
    ("metric-newline", {"primary_metric_name": "acc\nx"}, "hyperdrive.primary_metric_name", ["newline"]),
    ("metric-not-text", {"primary_metric_name": 3}, "hyperdrive.primary_metric_name", ["string"]),
    (
        "goal-missing",
        {"primary_metric_goal": MISSING},
        "hyperdrive.primary_metric_goal",
        ["is required", "'maximize' or 'minimize'"],
    ),
    ("goal-unknown", {"primary_metric_goal": "max"}, "hyperdrive.primary_metric_goal", ["'maximize', 'minimize'"]),
    ("goal-not-text", {"primary_metric_goal": 1}, "hyperdrive.primary_metric_goal", ["'maximize', 'minimize'"]),
    (
        "goal-v2-unknown",
        {"primary_metric_goal": MISSING, "objective": {"goal": "up"}},
        "hyperdrive.objective.goal",
        ["'maximize', 'minimize'"],
    ),
    ("objective-not-mapping", {"objective": "acc"}, "hyperdrive.objective", ["mapping", "primary_metric"]),
    ("objective-unknown-key", {"objective": {"metric": "acc"}}, "hyperdrive.objective.metric", ["unknown key"]),
    (
        "total-missing",
        {"max_total_runs": MISSING},
        "hyperdrive.max_total_runs",
        ["is required", "1 to 100000", "limits.max_total_trials"],
    ),
    ("total-zero", {"max_total_runs": 0}, "hyperdrive.max_total_runs", ["integer from 1 to 100000"]),
    ("total-too-many", {"max_total_runs": 100001}, "hyperdrive.max_total_runs", ["integer from 1 to 100000"]),
    ("total-bool", {"max_total_runs": True}, "hyperdrive.max_total_runs", ["integer from 1 to 100000"]),
    ("total-float", {"max_total_runs": 10.0}, "hyperdrive.max_total_runs", ["integer"]),
    (
        "total-v2-bad",
        {"max_total_runs": MISSING, "limits": {"max_total_trials": -1}},
        "hyperdrive.limits.max_total_trials",
        ["integer from 1"],
    ),
    ("concurrent-zero", {"max_concurrent_runs": 0}, "hyperdrive.max_concurrent_runs", ["integer from 1 to 10", "null"]),
    ("concurrent-over-total", {"max_concurrent_runs": 11}, "hyperdrive.max_concurrent_runs", ["integer from 1 to 10"]),
    ("concurrent-bool", {"max_concurrent_runs": False}, "hyperdrive.max_concurrent_runs", ["integer"]),
    ("duration-zero", {"max_duration_minutes": 0}, "hyperdrive.max_duration_minutes", ["integer ≥ 1"]),
    ("duration-text", {"max_duration_minutes": "1h"}, "hyperdrive.max_duration_minutes", ["integer ≥ 1"]),
    ("timeout-zero", {"limits": {"timeout": 0}}, "hyperdrive.limits.timeout", ["> 0", "seconds"]),
    ("timeout-bool", {"limits": {"timeout": True}}, "hyperdrive.limits.timeout", ["number"]),
    (
        "trial-timeout",
        {"limits": {"trial_timeout": 600}},
        "hyperdrive.limits.trial_timeout",
        ["max_run_duration_seconds"],
    ),
    (
        "limits-unknown-key",
        {"limits": {"max_trials": 3}},
        "hyperdrive.limits.max_trials",
        ["did you mean 'max_total_trials'"],
    ),
    ("limits-not-mapping", {"limits": 3}, "hyperdrive.limits", ["mapping"]),
    ("policy-not-mapping", {"policy": 3}, P, ["mapping"]),
    (
        "policy-type-missing",
        {"policy": {"slack_factor": 0.1}},
        f"{P}.type",
        ["required", "bandit, median_stopping, truncation_selection or none"],
    ),
    (
        "policy-type-unknown",
        {"policy": {"type": "asha"}},
        f"{P}.type",
        ["bandit, median_stopping, truncation_selection or none"],
    ),
    ("policy-type-unknown-text", {"policy": "hyperband"}, P, ["bandit, median_stopping"]),
    (
        "policy-unknown-key",
        {"policy": {"type": "bandit", "slack_factor": 0.1, "slack": 1}},
        f"{P}.slack",
        ["unknown key"],
    ),
    (
        "bandit-without-slack",
        {"policy": {"type": "bandit"}},
        f"{P}.slack_factor",
        ["exactly one of slack_factor or slack_amount", "neither"],
    ),
    ("bandit-text-without-slack", {"policy": "BanditPolicy"}, f"{P}.slack_factor", ["exactly one", "neither"]),
    (
        "bandit-both-slacks",
        {"policy": {"type": "bandit", "slack_factor": 0.1, "slack_amount": 0.1}},
        f"{P}.slack_factor",
        ["exactly one", "both"],
    ),
    ("bandit-factor-zero", {"policy": {"type": "bandit", "slack_factor": 0}}, f"{P}.slack_factor", ["> 0"]),
    ("bandit-amount-negative", {"policy": {"type": "bandit", "slack_amount": -0.1}}, f"{P}.slack_amount", ["> 0"]),
    ("bandit-factor-bool", {"policy": {"type": "bandit", "slack_factor": True}}, f"{P}.slack_factor", ["number"]),
    (
        "bandit-factor-nan",
        {"policy": {"type": "bandit", "slack_factor": float("nan")}},
        f"{P}.slack_factor",
        ["finite"],
    ),
    (
        "bandit-with-truncation",
        {"policy": {"type": "bandit", "slack_factor": 0.1, "truncation_percentage": 10}},
        f"{P}.truncation_percentage",
        ["only used with policy type 'truncation_selection'"],
    ),
    (
        "median-with-slack",
        {"policy": {"type": "median_stopping", "slack_factor": 0.1}},
        f"{P}.slack_factor",
        ["only used with policy type 'bandit'", "'median_stopping'"],
    ),
    (
        "truncation-with-amount",
        {"policy": {"type": "truncation_selection", "truncation_percentage": 5, "slack_amount": 1}},
        f"{P}.slack_amount",
        ["only used with policy type 'bandit'"],
    ),
    (
        "truncation-missing-percentage",
        {"policy": {"type": "truncation_selection"}},
        f"{P}.truncation_percentage",
        ["is required", "1 to 99"],
    ),
    (
        "truncation-percentage-zero",
        {"policy": {"type": "truncation_selection", "truncation_percentage": 0}},
        f"{P}.truncation_percentage",
        ["integer from 1 to 99"],
    ),
    (
        "truncation-percentage-100",
        {"policy": {"type": "truncation_selection", "truncation_percentage": 100}},
        f"{P}.truncation_percentage",
        ["integer from 1 to 99"],
    ),
    (
        "truncation-percentage-float",
        {"policy": {"type": "truncation_selection", "truncation_percentage": 10.5}},
        f"{P}.truncation_percentage",
        ["integer"],
    ),
    (
        "none-with-settings",
        {"policy": {"type": "none", "evaluation_interval": 2}},
        f"{P}.evaluation_interval",
        ["only used with a policy type"],
    ),
    (
        "interval-zero",
        {"policy": {"type": "median_stopping", "evaluation_interval": 0}},
        f"{P}.evaluation_interval",
        ["integer ≥ 1"],
    ),
    (
        "delay-negative",
        {"policy": {"type": "median_stopping", "delay_evaluation": -1}},
        f"{P}.delay_evaluation",
        ["integer ≥ 0"],
    ),
    (
        "delay-bool",
        {"policy": {"type": "median_stopping", "delay_evaluation": True}},
        f"{P}.delay_evaluation",
        ["integer"],
    ),
    (
        "early-termination-bad",
        {"early_termination": {"type": "bandit"}},
        "hyperdrive.early_termination.slack_factor",
        ["exactly one"],
    ),
]


@pytest.mark.parametrize(("changes", "key", "words"), [row[1:] for row in ERRORS], ids=[row[0] for row in ERRORS])
def test_errors(changes: dict[str, Any], key: str, words: list[str]) -> None:
    problem = the_problem(block(**changes), key)
    for word in words:
        assert word in problem.message, str(problem)


CONFLICTS: list[tuple[str, dict[str, Any], str, str]] = [
    # (id, keys added to BASE, the alias's key, the v1 key the message names)
    (
        "sampling-algorithm",
        {"sampling_algorithm": "random"},
        "hyperdrive.sampling_algorithm",
        "hyperdrive.hyperparameter_sampling",
    ),
    (
        "search-space",
        {"search_space": {"x": "randint(2)"}},
        "hyperdrive.search_space",
        "hyperdrive.hyperparameter_sampling",
    ),
    (
        "objective-metric",
        {"objective": {"primary_metric": "acc"}},
        "hyperdrive.objective.primary_metric",
        "hyperdrive.primary_metric_name",
    ),
    (
        "objective-goal",
        {"objective": {"goal": "maximize"}},
        "hyperdrive.objective.goal",
        "hyperdrive.primary_metric_goal",
    ),
    (
        "limits-total",
        {"limits": {"max_total_trials": 10}},
        "hyperdrive.limits.max_total_trials",
        "hyperdrive.max_total_runs",
    ),
    (
        "limits-concurrent",
        {"max_concurrent_runs": 2, "limits": {"max_concurrent_trials": 2}},
        "hyperdrive.limits.max_concurrent_trials",
        "hyperdrive.max_concurrent_runs",
    ),
    (
        "limits-timeout",
        {"max_duration_minutes": 2, "limits": {"timeout": 120}},
        "hyperdrive.limits.timeout",
        "hyperdrive.max_duration_minutes",
    ),
    (
        "early-termination",
        {"policy": None, "early_termination": None},
        "hyperdrive.early_termination",
        "hyperdrive.policy",
    ),
]


@pytest.mark.parametrize(("added", "key", "v1"), [row[1:] for row in CONFLICTS], ids=[row[0] for row in CONFLICTS])
def test_a_key_and_its_alias_together_is_an_error_naming_both(added: dict[str, Any], key: str, v1: str) -> None:
    problem = the_problem(block(**added), key)
    assert v1 in problem.message and "only one" in problem.message


def test_a_conflict_is_the_only_problem_reported() -> None:
    """The v1 value is still read: no spurious 'is required' for the key both name."""
    problems = problems_of(block(limits={"max_total_trials": 10}))
    assert [p.key for p in problems] == ["hyperdrive.limits.max_total_trials"]


def test_the_block_must_be_a_mapping() -> None:
    problem = the_problem(["random"], "hyperdrive")
    assert "mapping" in problem.message and "primary_metric_name" in problem.message


def test_the_block_name_prefixes_every_key() -> None:
    problems = problems_of(block(max_total_runs=0), key="sweep")
    assert [p.key for p in problems] == ["sweep.max_total_runs"]


# ---------------------------------------------------------------------------------------------- cross rules
CROSS: list[tuple[str, str, dict[str, Any], list[str]]] = [
    # (id, sampling, parameter space, the names refused)
    ("grid-refuses-uniform", "grid", {"--a": "choice(1, 2)", "--b": "uniform(0, 1)"}, ["--b"]),
    ("grid-names-each", "grid", {"--a": "randint(3)", "--b": "normal(0, 1)", "--c": "choice(1)"}, ["--a", "--b"]),
    (
        "bayesian-refuses-normals",
        "bayesian",
        {
            "--a": "normal(0, 1)",
            "--b": "qnormal(0, 1, 1)",
            "--c": "lognormal(0, 1)",
            "--d": "qlognormal(0, 1, 1)",
            "--e": "choice(1)",
        },
        ["--a", "--b", "--c", "--d"],
    ),
]


@pytest.mark.parametrize(("sampling", "params", "refused"), [row[1:] for row in CROSS], ids=[row[0] for row in CROSS])
def test_sampling_restricts_the_expression_kinds(sampling: str, params: dict[str, Any], refused: list[str]) -> None:
    problems = problems_of(block(hyperparameter_sampling={"type": sampling, "parameter_space": params}))
    assert [p.key for p in problems] == [f"{SPACE}.{name}" for name in refused]
    assert all(f"{sampling} sampling takes only choice" in p.message for p in problems)


ACCEPTED_KINDS = [
    ("grid", ["choice"]),
    ("bayesian", ["choice", "randint", "uniform", "quniform", "loguniform", "qloguniform"]),
    ("random", list(EXPR_KINDS)),
]


@pytest.mark.parametrize(("sampling", "kinds"), ACCEPTED_KINDS, ids=[row[0] for row in ACCEPTED_KINDS])
def test_sampling_accepts_its_kinds(sampling: str, kinds: list[str]) -> None:
    args = {"choice": "(1, 2)", "randint": "(3)"}
    params = {f"--{k}": k + args.get(k, "(0, 1, 1)" if k.startswith("q") else "(0, 1)") for k in kinds}
    assert parsed(block(hyperparameter_sampling={"type": sampling, "parameter_space": params})).sampling == sampling


def test_every_problem_is_reported_at_once() -> None:
    raw = {
        "hyperparameter_sampling": {
            "type": "grid",
            "seed": 1,
            "parameter_space": {"bad name": "choice(1)", "--x": "uniform(0, 1)", "--y": "choice()"},
        },
        "primary_metric_goal": "up",
        "max_total_runs": True,
        "max_concurrent_runs": 0,
        "policy": {"type": "bandit", "slack_factor": 0.1, "slack_amount": 0.2},
        "extra": 1,
    }
    keys = {p.key for p in problems_of(raw)}
    assert keys == {
        "hyperdrive.extra",
        f"{H}.seed",
        f"{SPACE}.bad name",
        f"{SPACE}.--x",
        f"{SPACE}.--y",
        "hyperdrive.primary_metric_name",
        "hyperdrive.primary_metric_goal",
        "hyperdrive.max_total_runs",
        "hyperdrive.max_concurrent_runs",
        f"{P}.slack_factor",
    }


def test_the_trial_count_of_a_grid_is_its_size_when_smaller() -> None:
    raw = block(
        hyperparameter_sampling={
            "type": "grid",
            "parameter_space": {"--a": "choice(1, 2, 3)", "--b": "choice('x', 'y')"},
        },
        max_total_runs=100,
    )
    assert parsed(raw).trial_count == 6


# ---------------------------------------------------------------------------------------------- round trip
ROUND_TRIPS = [BASE, V2, *(space(row[1]) for row in EXPRESSIONS), *(block(policy=row[1]) for row in POLICIES)]


@pytest.mark.parametrize("raw", ROUND_TRIPS)
def test_sweep_to_raw_reads_back_as_the_same_spec(raw: dict[str, Any]) -> None:
    spec = parsed(raw)
    again = sweep_to_raw(spec)
    assert parsed(again) == spec
    assert set(again) == {
        "hyperparameter_sampling",
        "primary_metric_name",
        "primary_metric_goal",
        "max_total_runs",
        "max_concurrent_runs",
        "max_duration_minutes",
        "policy",
    }
