"""HyperDrive's Python API (Azure ML SDK v1 names) for hpc_tf sweeps, so HyperDrive code ports by changing
its imports:

    from hpc_tf.hyperdrive import HyperDriveConfig, RandomParameterSampling, BanditPolicy, choice, loguniform
    sampling = RandomParameterSampling({"--batch-size": choice(16, 32, 64), "--lr": loguniform(-6, -1)})
    hd = HyperDriveConfig(sampling, "val_accuracy", PrimaryMetricGoal.MAXIMIZE, max_total_runs=20,
                          policy=BanditPolicy(slack_factor=0.1), estimator=TensorFlow(...))

The expression functions return the Azure ML v2 object form (`{"type": "choice", "values": [...]}`), which
is also what a config file's `hyperdrive:` block takes. HyperDriveConfig validates at once through the same
parser as the config file (`core.sweep_parse`), so an error reads the same from Python and from YAML.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

from .core.spec import EstimatorSpec
from .errors import ConfigError, Problem, UsageError
from .sweeps.core.parse import parse_sweep, sweep_to_raw
from .sweeps.core.spec import SweepSpec

SOURCE = "HyperDriveConfig(...)"
KEY = "hyperdrive"


def choice(*options: Any) -> dict[str, Any]:
    """One of the values: `choice(16, 32, 64)`, `choice([16, 32, 64])` or `choice(range(1, 5))`."""
    one = len(options) == 1 and isinstance(options[0], (list, tuple, range))
    return {"type": "choice", "values": list(options[0] if one else options)}


def randint(upper: int) -> dict[str, Any]:
    """An integer in 0 … upper-1."""
    return {"type": "randint", "upper": upper}


def uniform(min_value: float, max_value: float) -> dict[str, Any]:
    return {"type": "uniform", "min_value": min_value, "max_value": max_value}


def quniform(min_value: float, max_value: float, q: float) -> dict[str, Any]:
    """round(uniform(min_value, max_value) / q) * q (an int when q and the result are integral)."""
    return {"type": "quniform", "min_value": min_value, "max_value": max_value, "q": q}


def loguniform(min_value: float, max_value: float) -> dict[str, Any]:
    """exp(uniform(min_value, max_value)): the bounds are in log space, loguniform(-6, -1) is e⁻⁶ … e⁻¹."""
    return {"type": "loguniform", "min_value": min_value, "max_value": max_value}


def qloguniform(min_value: float, max_value: float, q: float) -> dict[str, Any]:
    return {"type": "qloguniform", "min_value": min_value, "max_value": max_value, "q": q}


def normal(mu: float, sigma: float) -> dict[str, Any]:
    return {"type": "normal", "mu": mu, "sigma": sigma}


def qnormal(mu: float, sigma: float, q: float) -> dict[str, Any]:
    return {"type": "qnormal", "mu": mu, "sigma": sigma, "q": q}


def lognormal(mu: float, sigma: float) -> dict[str, Any]:
    """exp(normal(mu, sigma))."""
    return {"type": "lognormal", "mu": mu, "sigma": sigma}


def qlognormal(mu: float, sigma: float, q: float) -> dict[str, Any]:
    return {"type": "qlognormal", "mu": mu, "sigma": sigma, "q": q}


class _Sampling:
    """A parameter space (script flag → expression) and how to sample it."""

    sampling_type: ClassVar[str]

    def __init__(self, parameter_space: Mapping[str, Any], seed: int | None = None) -> None:
        self.parameter_space = parameter_space
        self.seed = seed

    def to_raw(self) -> dict[str, Any]:
        """The `hyperparameter_sampling:` block, as written in a config file."""
        raw: dict[str, Any] = {"type": self.sampling_type}
        if self.seed is not None:
            raw["seed"] = self.seed
        raw["parameter_space"] = self.parameter_space
        return raw


class RandomParameterSampling(_Sampling):
    """Every expression kind; `seed` None: drawn at submit time and recorded."""

    sampling_type = "random"

    def __init__(self, parameter_space: Mapping[str, Any], seed: int | None = None) -> None:
        super().__init__(parameter_space, seed)


class GridParameterSampling(_Sampling):
    """Every combination of `choice` expressions (no other kind)."""

    sampling_type = "grid"

    def __init__(self, parameter_space: Mapping[str, Any]) -> None:
        super().__init__(parameter_space)


class BayesianParameterSampling(_Sampling):
    """Optuna's TPE (`pip install 'hpc_tf[bayesian]'`); choice, randint, (q)uniform and (q)loguniform only."""

    sampling_type = "bayesian"

    def __init__(self, parameter_space: Mapping[str, Any]) -> None:
        super().__init__(parameter_space)


class _Policy:
    """An early-termination policy; `to_raw` gives its `policy:` block."""

    policy_type: ClassVar[str | None]

    def __init__(self, **settings: Any) -> None:
        self.settings = {k: v for k, v in settings.items() if v is not None}

    def to_raw(self) -> dict[str, Any] | None:
        return None if self.policy_type is None else {"type": self.policy_type, **self.settings}


class BanditPolicy(_Policy):
    """Stop a trial whose value is worse than the best trial's at the same interval by more than a slack
    (give exactly one of slack_factor and slack_amount)."""

    policy_type = "bandit"

    def __init__(
        self,
        evaluation_interval: int = 1,
        slack_factor: float | None = None,
        slack_amount: float | None = None,
        delay_evaluation: int = 0,
    ) -> None:
        super().__init__(
            evaluation_interval=evaluation_interval,
            slack_factor=slack_factor,
            slack_amount=slack_amount,
            delay_evaluation=delay_evaluation,
        )


class MedianStoppingPolicy(_Policy):
    """Stop a trial whose best value is worse than the median of the other trials' running averages."""

    policy_type = "median_stopping"

    def __init__(self, evaluation_interval: int = 1, delay_evaluation: int = 0) -> None:
        super().__init__(evaluation_interval=evaluation_interval, delay_evaluation=delay_evaluation)


class TruncationSelectionPolicy(_Policy):
    """Stop the worst truncation_percentage % (1 to 99) of the trials at each evaluated interval."""

    policy_type = "truncation_selection"

    def __init__(self, truncation_percentage: int, evaluation_interval: int = 1, delay_evaluation: int = 0) -> None:
        super().__init__(
            truncation_percentage=truncation_percentage,
            evaluation_interval=evaluation_interval,
            delay_evaluation=delay_evaluation,
        )


class NoTerminationPolicy(_Policy):
    """No early termination (the same as policy=None)."""

    policy_type = None

    def __init__(self) -> None:
        super().__init__()


class PrimaryMetricGoal:
    """Whether the primary metric is to be maximized or minimized."""

    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


class HyperDriveConfig:
    """A sweep: a TensorFlow estimator run once per sampled set of script flags. Validated when made
    (ConfigError lists every problem); `.spec` is the validated SweepSpec, `.to_raw()` its `hyperdrive:` block.
    """

    def __init__(
        self,
        hyperparameter_sampling: _Sampling | Mapping[str, Any],
        primary_metric_name: str,
        primary_metric_goal: str,
        max_total_runs: int,
        max_concurrent_runs: int | None = None,
        max_duration_minutes: int = 10080,
        policy: _Policy | Mapping[str, Any] | None = None,
        estimator: Any = None,
    ) -> None:
        if estimator is not None and not isinstance(getattr(estimator, "spec", None), EstimatorSpec):
            raise UsageError(
                f"estimator must be an hpc_tf.TensorFlow estimator or None, not {type(estimator).__name__}"
            )
        self.hyperparameter_sampling = hyperparameter_sampling
        self.primary_metric_name = primary_metric_name
        self.primary_metric_goal = primary_metric_goal
        self.max_total_runs = max_total_runs
        self.max_concurrent_runs = max_concurrent_runs
        self.max_duration_minutes = max_duration_minutes
        self.policy = policy
        self.estimator = estimator
        wrong: list[Problem] = []
        raw = {
            "hyperparameter_sampling": _raw(hyperparameter_sampling, _Sampling, "hyperparameter_sampling", wrong),
            "primary_metric_name": primary_metric_name,
            "primary_metric_goal": primary_metric_goal,
            "max_total_runs": max_total_runs,
            "max_concurrent_runs": max_concurrent_runs,
            "max_duration_minutes": max_duration_minutes,
            "policy": _raw(policy, _Policy, "policy", wrong),
        }
        spec, problems = parse_sweep({k: v for k, v in raw.items() if v is not _WRONG}, KEY, SOURCE)
        problems = wrong + [p for p in problems if p.key not in {w.key for w in wrong}]
        if problems or spec is None:
            raise ConfigError(problems)
        self.spec: SweepSpec = spec

    def to_raw(self) -> dict[str, Any]:
        """The `hyperdrive:` block in HyperDrive v1 names (plain data: parse_sweep reads it back as `.spec`)."""
        return sweep_to_raw(self.spec)

    def __repr__(self) -> str:
        spec = self.spec
        return (
            f"HyperDriveConfig({spec.sampling}, {len(spec.parameter_space)} parameters, "
            f"{spec.primary_metric_goal} {spec.primary_metric_name!r}, {spec.trial_count} runs)"
        )


_WRONG = object()
_WHAT = {
    "hyperparameter_sampling": "RandomParameterSampling, GridParameterSampling or BayesianParameterSampling",
    "policy": "BanditPolicy, MedianStoppingPolicy, TruncationSelectionPolicy, NoTerminationPolicy or None",
}


def _raw(value: Any, cls: type, name: str, wrong: list[Problem]) -> Any:
    """The config-file form of a sampling or policy argument (a mapping is taken as that form already)."""
    if isinstance(value, cls):
        return value.to_raw()  # type: ignore[attr-defined]
    if value is None or isinstance(value, Mapping):
        return value
    wrong.append(Problem(f"{KEY}.{name}", f"must be {_WHAT[name]}", value, source=SOURCE))
    return _WRONG
