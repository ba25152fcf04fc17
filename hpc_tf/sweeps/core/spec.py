"""The sweep (HyperDrive) part of a config: parameter expressions, the early-termination policy and the
sweep's limits, as typed structs. Parsing and validation of the `hyperdrive:` block are in `sweep_parse`.

A sweep is an ordinary job config plus a `hyperdrive:` block (alias `sweep:`); the parameter space's keys
are the entry script's flags (HyperDrive's convention: `--learning-rate: loguniform(-6, -1)`).
"""

from __future__ import annotations

from typing import Literal, Union

import msgspec

Scalar = Union[str, int, float, bool]
ExprKind = Literal[
    "choice",
    "randint",
    "uniform",
    "quniform",
    "loguniform",
    "qloguniform",
    "normal",
    "qnormal",
    "lognormal",
    "qlognormal",
]
EXPR_KINDS: tuple[str, ...] = ExprKind.__args__  # type: ignore[attr-defined]
SAMPLINGS = ("random", "grid", "bayesian")
POLICY_TYPES = ("bandit", "median_stopping", "truncation_selection")
GOALS = ("maximize", "minimize")


class ParamExpr(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One HyperDrive parameter expression.

    choice: `values`; randint: `upper` (draws 0..upper-1); uniform/quniform: `low`, `high` (`q`);
    loguniform/qloguniform: `low`, `high` in *log space* (exp(uniform(low, high)), as HyperDrive);
    normal/qnormal/lognormal/qlognormal: `mu`, `sigma` (`q`). Quantized kinds round(x / q) * q.
    """

    kind: ExprKind
    values: tuple[Scalar, ...] = ()
    upper: int | None = None
    low: float | None = None
    high: float | None = None
    mu: float | None = None
    sigma: float | None = None
    q: float | None = None

    def text(self) -> str:
        """The HyperDrive call string, e.g. `loguniform(-6, -1)`."""
        if self.kind == "choice":
            args = [repr(v) for v in self.values]
        elif self.kind == "randint":
            args = [str(self.upper)]
        elif self.kind in ("uniform", "quniform", "loguniform", "qloguniform"):
            args = [_num(self.low), _num(self.high)]
        else:
            args = [_num(self.mu), _num(self.sigma)]
        if self.kind.startswith("q"):
            args.append(_num(self.q))
        return f"{self.kind}({', '.join(args)})"


def _num(value: float | None) -> str:
    return "None" if value is None else (str(int(value)) if float(value).is_integer() else repr(value))


class PolicySpec(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An early-termination policy, with HyperDrive's names and defaults (an interval is one logging of
    the primary metric; a policy applies at every multiple of evaluation_interval ≥ delay_evaluation)."""

    type: Literal["bandit", "median_stopping", "truncation_selection"]
    evaluation_interval: int = 1
    delay_evaluation: int = 0
    slack_factor: float | None = None
    slack_amount: float | None = None
    truncation_percentage: int | None = None


class SweepSpec(msgspec.Struct, frozen=True, kw_only=True):
    """The `hyperdrive:` block, validated and with aliases resolved.

    `parameter_space` keys are script flags (a v2 name without a leading '-' is stored as `--name`), in
    the order given; `seed` None means "drawn at submit time and recorded"."""

    sampling: Literal["random", "grid", "bayesian"]
    parameter_space: dict[str, ParamExpr]
    primary_metric_name: str
    primary_metric_goal: Literal["maximize", "minimize"]
    max_total_runs: int
    seed: int | None = None
    max_concurrent_runs: int | None = None  # None: every trial at once (HyperDrive's default)
    max_duration_minutes: int = 10080
    policy: PolicySpec | None = None

    @property
    def trial_count(self) -> int:
        """How many trials the sweep runs: max_total_runs, or the grid's size when that is smaller."""
        if self.sampling != "grid":
            return self.max_total_runs
        size = 1
        for expr in self.parameter_space.values():
            size *= len(expr.values)
        return min(size, self.max_total_runs)
