"""What a continuous expression's draws can reach, checked on its arguments before anything is drawn: a parameter
whose draws can overflow to ±inf, underflow to 0 or not be quantized means something other than what it says, so
validation refuses it (every trial would otherwise run with `inf`, or with values that are not multiples of q).

Why the bounds hold (hpc_tf.sweeps.core.sampling draws with `random.Random`):
- uniform draws low + (high − low)·u, u in [0, 1): finite whenever high − low is.
- normal draws mu + sigma·z, and random.gauss makes z = cos(2πu)·sqrt(−2·ln(1 − v)) with 1 − v ≥ 2⁻⁵³, so
  |z| ≤ sqrt(106·ln 2) = 8.5717 < Z_MAX: the draw is finite whenever |mu| + Z_MAX·sigma is.
- the log kinds take exp of those: exp(709.78) is the largest float, exp(−708.4) the smallest normal one.
- a quantized kind is round(x / q)·q, written with 15 significant digits (sampling._quantized): with q below
  Q_RESOLUTION × the largest |value|, neighbouring multiples of q are closer than floats (or 15 digits) can
  tell apart there, so the value written is not a multiple of q.
"""

from __future__ import annotations

import math
import sys
from typing import Mapping

Z_MAX = 8.58  # above the largest |z| random.gauss can give (8.5717)
MAX_LOG = 709.0  # exp(709.78) is the largest float: a log-space bound above this would overflow
MIN_LOG = -708.0  # exp(-708.4) is the smallest normal float: below it exp loses precision, then gives 0
Q_RESOLUTION = 1e-12  # q ≥ magnitude × this: 1000× the spacing of 15 significant digits
MIN_Q = 1e-290  # a multiple of a smaller q is a subnormal float (fewer bits than a float has)
LARGEST = sys.float_info.max


def reach(kind: str, got: Mapping[str, float]) -> float:
    """The largest |value| a draw of a continuous kind can have before quantizing (inf when it overflows).
    `got` holds min_value/max_value or mu/sigma, already checked finite (sigma > 0)."""
    if "mu" in got:
        mu, sigma = got["mu"], got["sigma"]
        if "log" in kind:
            top = mu + Z_MAX * sigma
            return math.inf if top > MAX_LOG else math.exp(top)
        return abs(mu) + Z_MAX * sigma
    low, high = got["min_value"], got["max_value"]
    if "log" in kind:
        return math.inf if high > MAX_LOG else math.exp(high)
    return max(abs(low), abs(high)) if math.isfinite(high - low) else math.inf


def draw_problem(kind: str, got: Mapping[str, float]) -> tuple[str, str] | None:
    """(the argument to name, why) when a draw can overflow, underflow or escape quantization; else None."""
    if "mu" in got:
        found = _normal(kind, got["mu"], got["sigma"])
    else:
        found = _uniform(kind, got["min_value"], got["max_value"])
    if found is not None or got.get("q") is None:
        return found
    return _quantum(kind, reach(kind, got), got["q"])


def _uniform(kind: str, low: float, high: float) -> tuple[str, str] | None:
    if "log" in kind:
        if high > MAX_LOG:
            return (
                "max_value",
                f"{kind} bounds are in log space (exp(max_value)); at most {MAX_LOG:g}, e.g. loguniform(-6, -1)",
            )
        if low < MIN_LOG:
            return "min_value", (
                f"{kind} bounds are in log space (exp(min_value)); at least {MIN_LOG:g}: exp({low:g}) is below the "
                "smallest float and comes out as 0 (e.g. loguniform(-6, -1))"
            )
        return None
    if not math.isfinite(high - low):
        return "max_value", (
            f"{kind} draws min_value + (max_value - min_value)·u, and max_value - min_value overflows to inf here, "
            f"so draws would be ±inf; the range (max_value - min_value) must be below {LARGEST:.6g}"
        )
    return None


def _normal(kind: str, mu: float, sigma: float) -> tuple[str, str] | None:
    name = "sigma" if Z_MAX * sigma >= abs(mu) else "mu"
    if "log" in kind:
        top = mu + Z_MAX * sigma
        if top > MAX_LOG:
            return name, (
                f"{kind} draws exp(mu + sigma·z) with |z| up to {Z_MAX} (Python's random.gauss), and exp({top:.6g}) "
                f"overflows to inf; mu + {Z_MAX}·sigma must be at most {MAX_LOG:g}"
            )
        return None
    if not math.isfinite(abs(mu) + Z_MAX * sigma):
        return name, (
            f"{kind} draws mu + sigma·z with |z| up to {Z_MAX} (Python's random.gauss), and |mu| + {Z_MAX}·sigma "
            f"overflows to inf here, so draws could be ±inf; it must stay below {LARGEST:.6g}"
        )
    return None


def _quantum(kind: str, magnitude: float, q: float) -> tuple[str, str] | None:
    need = max(magnitude * Q_RESOLUTION, MIN_Q)
    if not math.isfinite(magnitude + q):
        return "q", (
            f"q {q:g} is too large for {kind}: its values reach {magnitude:.6g}, and a multiple of q rounded from "
            f"them can overflow to inf; the largest value + q must stay below {LARGEST:.6g}"
        )
    if q >= need:
        return None
    return "q", (
        f"q {q:g} is too small to quantize {kind}: its values reach {magnitude:.6g}, where floats are "
        f"{math.ulp(magnitude):.3g} apart and a value is written with 15 significant digits, so round(x / q)·q "
        f"would not be a multiple of q; q must be at least {need:.3g} ({Q_RESOLUTION:g} × the largest value)"
    )
