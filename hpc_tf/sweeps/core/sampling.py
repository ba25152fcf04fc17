"""Drawing a sweep's trials before anything runs (random and grid sampling), so the parameters of every
trial are recorded at submit time, reproducible from the seed and inspectable before the jobs start.

HyperDrive's semantics: choice picks one value; randint(upper) draws 0 … upper-1; loguniform(low, high)
is exp(uniform(low, high)) (the bounds are in log space); lognormal is exp(normal); a quantized kind is
round(x / q) * q. Bayesian trials are not drawn here: Optuna asks for them as the trials start.
"""

from __future__ import annotations

import itertools
import math
import random

from .spec import ParamExpr, Scalar, SweepSpec


def sample(expr: ParamExpr, rng: random.Random) -> Scalar:
    """One value of an expression, drawn with `rng` (the only source of randomness: same state, same value).

    A quantized value (round(x / q) * q) is returned as an int when q is integral and so is the result,
    so a flag reads `--batch-size 32`, not `--batch-size 32.0`; other quantized results are cleaned of
    binary noise (quniform(0, 1, 0.1) gives 0.3, not 0.30000000000000004).
    """
    kind = expr.kind
    if kind == "choice":
        return rng.choice(expr.values)
    if kind == "randint":
        return rng.randrange(expr.upper or 1)
    if kind in ("uniform", "quniform", "loguniform", "qloguniform"):
        x = rng.uniform(_f(expr.low), _f(expr.high))
    else:
        x = rng.gauss(_f(expr.mu), _f(expr.sigma))
    if "log" in kind:
        x = _exp(x)
    return _quantized(x, expr.q) if kind.startswith("q") else x


def _f(value: float | None) -> float:
    if value is None:  # sweep_parse never leaves a needed field empty
        raise ValueError("incomplete parameter expression")
    return value


def _exp(x: float) -> float:
    """exp, saturating at inf (a lognormal draw far in the tail must not raise)."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _quantized(x: float, q: float | None) -> Scalar:
    step = _f(q)
    ratio = x / step
    if not math.isfinite(ratio):
        return x
    value = round(ratio) * step
    if float(step).is_integer() and float(value).is_integer():
        return int(value)
    return float(f"{value:.15g}")


def draw_trials(spec: SweepSpec, seed: int) -> list[dict[str, Scalar]]:
    """The parameters of every trial (flag → value), exactly `spec.trial_count` of them.

    random: `random.Random(seed)`, per trial, per parameter in the space's order; grid: the cartesian
    product of the choices in key order (the first key varies slowest), its first trial_count points
    (the seed is not used). Bayesian trials cannot be drawn in advance: ValueError.
    """
    if spec.sampling == "bayesian":
        raise ValueError("bayesian trials are asked from Optuna as they start, not drawn in advance")
    count = spec.trial_count
    if spec.sampling == "grid":
        flags = list(spec.parameter_space)
        points = itertools.product(*(spec.parameter_space[f].values for f in flags))
        return [dict(zip(flags, point, strict=True)) for point in itertools.islice(points, count)]
    rng = random.Random(seed)
    return [{flag: sample(expr, rng) for flag, expr in spec.parameter_space.items()} for _ in range(count)]


def grid_size(spec: SweepSpec) -> int:
    """The number of points of the full grid (the product of the choices' sizes); ValueError unless grid."""
    if spec.sampling != "grid":
        raise ValueError(f"grid_size of a {spec.sampling} sweep: only grid sampling has a finite size")
    return math.prod(len(expr.values) for expr in spec.parameter_space.values())
