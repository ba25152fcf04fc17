"""The `hyperdrive:` block (alias `sweep:`) of a config → a SweepSpec, with every problem reported at once.

HyperDrive v1 names are the canonical ones; the Azure ML v2 sweep names are accepted as aliases
(`sampling_algorithm` + `search_space`, `objective.{primary_metric, goal}`, `limits.{max_total_trials,
max_concurrent_trials, timeout}`, `early_termination`). Giving a v1 key and its alias is an error naming both.
Every Problem key is the dotted path the user wrote (`hyperdrive.search_space.lr`), so the error points at
the line to fix. Expressions are parsed in `sweep_exprs`.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import msgspec

from ...errors import Problem
from .budget import check_space, check_sweep
from .exprs import check_kinds, expr_to_raw, parse_space
from .fields import Problems, normalized
from .policy_parse import parse_policy
from .spec import GOALS, SAMPLINGS, SweepSpec

MAX_TOTAL_RUNS = 100_000
MAX_SEED = 2**32 - 1  # what numpy (Optuna's samplers) accepts
DEFAULT_MINUTES = 10080
MAX_MINUTES = 5_256_000  # ten years: the deadline (submit time + this) must be a date Python can write
V1_KEYS = (
    "hyperparameter_sampling",
    "primary_metric_name",
    "primary_metric_goal",
    "max_total_runs",
    "max_concurrent_runs",
    "max_duration_minutes",
    "policy",
)
V2_KEYS = ("sampling_algorithm", "search_space", "objective", "limits", "early_termination")
ALIASES = {  # v1 name → (v2 section or "", v2 name)
    "primary_metric_name": ("objective", "primary_metric"),
    "primary_metric_goal": ("objective", "goal"),
    "max_total_runs": ("limits", "max_total_trials"),
    "max_concurrent_runs": ("limits", "max_concurrent_trials"),
    "max_duration_minutes": ("limits", "timeout"),
    "policy": ("", "early_termination"),
}
SECTIONS = {"objective": ("primary_metric", "goal"), "limits": ("max_total_trials", "max_concurrent_trials", "timeout")}


def parse_sweep(raw: Any, key: str, source: str | None) -> tuple[SweepSpec | None, list[Problem]]:
    """The SweepSpec of a `hyperdrive:` block, or None and every problem found (keys prefixed with `key`)."""
    problems = Problems(source)
    data = problems.mapping(raw, key, "hyperparameter_sampling, primary_metric_name, primary_metric_goal, ...")
    if data is None:
        return None, problems.found
    problems.known(data, V1_KEYS + V2_KEYS, key)
    given = _resolve(data, key, problems)
    sampling, seed, space = _sampling(data, key, problems)
    metric = _required(given, "primary_metric_name", key, problems, "the metric the training script logs")
    name = None if metric is None else problems.text(*metric, "the name of the logged metric")
    goal = _goal(given, key, problems)
    total = _required(given, "max_total_runs", key, problems, f"an integer from 1 to {MAX_TOTAL_RUNS}")
    runs = None if total is None else problems.integer(*total, 1, MAX_TOTAL_RUNS)
    concurrent = _concurrent(given, runs, problems)
    minutes = _minutes(given, problems)
    policy = parse_policy(*given.get("policy", (None, "")), problems)
    if problems.found or sampling is None or space is None or name is None or goal is None or runs is None:
        return None, problems.found
    spec = SweepSpec(
        sampling=sampling,  # type: ignore[arg-type]
        parameter_space={flag: expr for _, flag, expr in space},
        primary_metric_name=name,
        primary_metric_goal=goal,  # type: ignore[arg-type]
        max_total_runs=runs,
        seed=seed,
        max_concurrent_runs=concurrent,
        max_duration_minutes=minutes if minutes is not None else DEFAULT_MINUTES,
        policy=policy,
    )
    check_sweep(spec, total[1] if total is not None else f"{key}.max_total_runs", runs, problems)
    return (None, problems.found) if problems.found else (spec, [])


def _resolve(data: Mapping[Any, Any], key: str, problems: Problems) -> dict[str, tuple[Any, str]]:
    """v1 name → (value, the dotted path the user wrote it at), for the keys with a v2 alias."""
    sections: dict[str, Mapping[Any, Any]] = {}
    for section, names in SECTIONS.items():
        if section in data:
            allowed = names + (("trial_timeout",) if section == "limits" else ())
            found = problems.mapping(data[section], f"{key}.{section}", ", ".join(names)) or {}
            problems.known(found, allowed, f"{key}.{section}")
            sections[section] = found
    if "trial_timeout" in sections.get("limits", {}):
        problems.add(
            f"{key}.limits.trial_timeout",
            "is not supported: each trial is one run of the job; set the job's max_run_duration_seconds",
            sections["limits"]["trial_timeout"],
        )
    given: dict[str, tuple[Any, str]] = {}
    for name, (section, alias) in ALIASES.items():
        holder = sections.get(section, {}) if section else data
        path = f"{key}.{section}.{alias}" if section else f"{key}.{alias}"
        if name in data:
            given[name] = (data[name], f"{key}.{name}")  # also checked when its alias is given too
            if alias in holder:
                problems.add(path, f"is an alias of {key}.{name}: give only one of the two", holder[alias])
        elif alias in holder:
            given[name] = (holder[alias], path)
    return given


def _required(
    given: dict[str, tuple[Any, str]], name: str, key: str, problems: Problems, allowed: str
) -> tuple[Any, str] | None:
    if name in given:
        return given[name]
    section, alias = ALIASES[name]
    problems.add(f"{key}.{name}", f"is required: {allowed} (alias: {section}.{alias})")
    return None


def _goal(given: dict[str, tuple[Any, str]], key: str, problems: Problems) -> str | None:
    """maximize/minimize in any case, also as `PrimaryMetricGoal.MAXIMIZE`."""
    found = _required(given, "primary_metric_goal", key, problems, "'maximize' or 'minimize'")
    if found is None:
        return None
    value, path = found
    goal = normalized(value).removeprefix("primarymetricgoal.") if isinstance(value, str) else None
    if goal in GOALS:
        return goal
    problems.add(path, "valid values: 'maximize', 'minimize' (any case, or PrimaryMetricGoal.MAXIMIZE)", value)
    return None


def _concurrent(given: dict[str, tuple[Any, str]], runs: int | None, problems: Problems) -> int | None:
    value, path = given.get("max_concurrent_runs", (None, ""))
    if value is None:
        return None
    high = runs if runs is not None else MAX_TOTAL_RUNS
    return problems.integer(value, path, 1, high, extra=" (the total runs), or null for all at once")


def _minutes(given: dict[str, tuple[Any, str]], problems: Problems) -> int | None:
    """max_duration_minutes, or limits.timeout in seconds rounded up to whole minutes."""
    value, path = given.get("max_duration_minutes", (None, ""))
    if value is None:
        return None
    if path.endswith(".timeout"):
        seconds = problems.number(value, path, positive=True, what=" (seconds)")
        if seconds is not None and seconds > MAX_MINUTES * 60:
            problems.add(
                path, f"must be at most {MAX_MINUTES * 60} seconds (ten years): the deadline must be a date", value
            )
            return None
        return None if seconds is None else max(1, math.ceil(seconds / 60))
    minutes = problems.integer(value, path, 1, extra=" (minutes)")
    if minutes is not None and minutes > MAX_MINUTES:
        problems.add(path, f"must be at most {MAX_MINUTES} minutes (ten years): the deadline must be a date", value)
        return None
    return minutes


def _sampling(data: Mapping[Any, Any], key: str, problems: Problems) -> tuple[str | None, int | None, Any]:
    """(random|grid|bayesian, seed, [(name, flag, expr)]) from hyperparameter_sampling or its v2 aliases."""
    v1 = f"{key}.hyperparameter_sampling"
    holds = "type, seed, parameter_space"
    block: Mapping[Any, Any] | None = None
    space, space_path, path, where_type = data.get("search_space"), f"{key}.search_space", v1, f"{v1}.type"
    if "hyperparameter_sampling" in data:
        for alias in ("sampling_algorithm", "search_space"):
            if alias in data:
                problems.add(f"{key}.{alias}", f"is an alias of part of {v1}: give only one of the two", data[alias])
        block = problems.mapping(data["hyperparameter_sampling"], v1, holds)
        if block is None:
            return None, None, None
        problems.known(block, ("type", "seed", "rule", "parameter_space"), v1)
        space, space_path = block.get("parameter_space"), f"{v1}.parameter_space"
    elif "sampling_algorithm" in data:
        path = where_type = f"{key}.sampling_algorithm"
        value = data["sampling_algorithm"]
        if isinstance(value, str):
            block = {"type": value}
        else:
            block, where_type = problems.mapping(value, path, "type, seed, rule"), f"{path}.type"
            if block is not None:
                problems.known(block, ("type", "seed", "rule"), path)
    else:
        problems.add(v1, f"is required: a mapping ({holds}) (alias: sampling_algorithm + search_space)")
    kind = _sampling_type(block, where_type, problems) if block is not None else None
    seed = _seed(block, kind, path, problems) if block is not None else None
    if space is None:
        if block is not None:
            problems.add(space_path, "is required: script flag → expression, e.g. {--lr: 'loguniform(-6, -1)'}")
        return kind, seed, None
    parsed = parse_space(space, space_path, problems)
    if parsed is not None and kind is not None:
        check_kinds(parsed, kind, space_path, problems)
    if parsed is not None:
        check_space(parsed, space_path, problems)
    return kind, seed, parsed


def _sampling_type(block: Mapping[Any, Any], where: str, problems: Problems) -> str | None:
    if "type" not in block:
        problems.add(where, "is required: random, grid or bayesian")
        return None
    value = block["type"]
    kind = normalized(value, ("parametersampling", "sampling")) if isinstance(value, str) else None
    if kind in SAMPLINGS:
        return kind
    problems.add(where, "valid values: random, grid, bayesian", value)
    return None


def _seed(block: Mapping[Any, Any], kind: str | None, path: str, problems: Problems) -> int | None:
    """The seed (random and bayesian) and v2's rule (random only; sobol is not supported)."""
    rule = block.get("rule")
    if rule is not None:
        if not isinstance(rule, str) or rule.strip().lower() != "random":
            why = "sobol sampling is not supported" if str(rule).strip().lower() == "sobol" else "unknown rule"
            problems.add(f"{path}.rule", f"{why}; valid values: 'random'", rule)
        elif kind not in (None, "random"):
            problems.add(f"{path}.rule", f"only used with random sampling (type is {kind!r})", rule)
    if block.get("seed") is None:
        return None
    if kind == "grid":
        problems.add(f"{path}.seed", "only used with random or bayesian sampling (a grid has no randomness)")
        return None
    return problems.integer(block["seed"], f"{path}.seed", 0, MAX_SEED)


def sweep_to_raw(spec: SweepSpec) -> dict[str, Any]:
    """The `hyperdrive:` block of a SweepSpec in v1 names (parse_sweep reads it back as the same SweepSpec)."""
    sampling: dict[str, Any] = {"type": spec.sampling}
    if spec.seed is not None:
        sampling["seed"] = spec.seed
    sampling["parameter_space"] = {flag: expr_to_raw(expr) for flag, expr in spec.parameter_space.items()}
    policy = None
    if spec.policy is not None:
        policy = {k: v for k, v in msgspec.structs.asdict(spec.policy).items() if v is not None}
    return {
        "hyperparameter_sampling": sampling,
        "primary_metric_name": spec.primary_metric_name,
        "primary_metric_goal": spec.primary_metric_goal,
        "max_total_runs": spec.max_total_runs,
        "max_concurrent_runs": spec.max_concurrent_runs,
        "max_duration_minutes": spec.max_duration_minutes,
        "policy": policy,
    }
