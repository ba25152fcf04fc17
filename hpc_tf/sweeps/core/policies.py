"""HyperDrive's early-termination rules (bandit, median stopping, truncation selection) as pure functions of
the primary metric's histories, so the in-job check and a controller decide the same way and every
decision can be re-computed from its inputs.

An *interval* is one logging of the primary metric, 1-based: history[k-1] is the value at interval k. A
policy applies at every k with k % evaluation_interval == 0 and k >= delay_evaluation (`eligible`).
A rule compares the trial's value at k with its siblings' values at the same k, running siblings included
(Azure's "best performing run at interval N"). `decide` checks every eligible k up to the trial's current
interval, not only the last: a sibling that reaches k after this trial did is still compared at the trial's
next decision, so the timing of concurrent trials can delay an outcome but not change it.

Rules are written for maximize. **Minimize is the exact mirror**: every value is negated, the maximize rule
applies, and the Decision reports the values un-negated. With best the best value at k:

- bandit, slack_amount a: terminate if value < best - a (minimize: value > best + a).
- bandit, slack_factor s: for best > 0, terminate if value < best / (1 + s); Azure's docs: best 0.8 with
  s = 0.2 gives 0.8 / 1.2 = 0.667. The mirror gives, for minimize with best > 0 (a loss): value > best ×
  (1 + s). So that the mirror holds, a maximized best < 0 uses value < best × (1 + s) (minimize, best < 0:
  value > best / (1 + s)): "worse by a factor 1 + s" either way. A best of 0 gives no factor to apply: no
  termination (the reason says so).
- median_stopping: over the siblings with at least k values, the median of their running averages of
  values 1..k; terminate if the trial's best value over 1..k is strictly worse.
- truncation_selection: the trials with a value at k (the trial included), sorted worst first; cut =
  floor(count × truncation_percentage / 100); terminate if the trial's value is strictly worse than the
  (cut+1)-th worst. A trial tied with that value is not cut, so ties never cut more than `cut` trials' worth.

Values that are not finite numbers (NaN, ±inf, text): the trial's own is the worst possible — at an eligible
k where at least one sibling value enters the rule, the trial is terminated (it diverged), whatever the
rule would cut; a sibling's is ignored (that sibling has no value there). A rule with no sibling value at k
does not fire.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import msgspec

from .fields import as_float
from .spec import GOALS, PolicySpec

History = list[float | None]  # maximize-space values, None where not a finite number


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """What a policy decided for one trial, with the numbers it compared (in the metric's own sign)."""

    terminate: bool
    rule: str  # "bandit" | "median_stopping" | "truncation_selection" | "none"
    interval: int  # the interval the rule fired at (or the last one evaluated; 0 if none)
    value: float | None = None  # the trial's own number the rule compared (None: not a finite number)
    threshold: float | None = None  # what it was compared with
    best: float | None = None  # bandit: the best value at that interval
    compared: int = 0  # how many trials' values at that interval entered the rule
    reason: str = ""  # one human sentence


def eligible(policy: PolicySpec, interval: int) -> bool:
    """Whether the policy applies at this 1-based interval (HyperDrive: every multiple of
    evaluation_interval that is at least delay_evaluation)."""
    return interval >= 1 and interval % max(1, policy.evaluation_interval) == 0 and interval >= policy.delay_evaluation


def decide(
    policy: PolicySpec | None, goal: str, mine: Sequence[float], siblings: Mapping[str, Sequence[float]]
) -> Decision:
    """The first eligible interval 1..len(mine) at which the rule terminates the trial, else the last
    evaluated interval's non-terminating Decision (interval 0 when none was eligible yet)."""
    if policy is None:
        return Decision(terminate=False, rule="none", interval=0, reason="no early-termination policy")
    if goal not in GOALS:
        raise ValueError(f"unknown goal {goal!r}; valid: {', '.join(GOALS)}")
    sign = -1.0 if goal == "minimize" else 1.0
    own = _signed(mine, sign)
    others = [_signed(siblings[name], sign) for name in sorted(siblings, key=str)]
    if policy.type == "median_stopping":  # once per call, not once per interval
        others = [_running(h) for h in others]
    rule = _RULES[policy.type]
    last = Decision(
        terminate=False,
        rule=policy.type,
        interval=0,
        reason=f"no eligible interval yet (evaluation_interval {policy.evaluation_interval}, "
        f"delay_evaluation {policy.delay_evaluation}, {len(own)} logged)",
    )
    for k in range(1, len(own) + 1):
        if eligible(policy, k):
            last = rule(policy, sign, own, others, k)
            if last.terminate:
                return last
    return last


def _signed(history: Sequence[object], sign: float) -> History:
    return [None if (x := as_float(v)) is None else sign * x for v in history]


def _raw(sign: float, value: float | None) -> float | None:
    return None if value is None else sign * value


def _g(value: float | None) -> str:
    return "not a finite number" if value is None else f"{value:.6g}"


def _diverged(policy: PolicySpec, sign: float, k: int, threshold: float | None, compared: int) -> Decision:
    return Decision(
        terminate=True,
        rule=policy.type,
        interval=k,
        threshold=_raw(sign, threshold),
        compared=compared,
        reason=f"the trial's value at interval {k} is not a finite number: the worst possible",
    )


def _alone(policy: PolicySpec, sign: float, k: int, value: float | None) -> Decision:
    return Decision(
        terminate=False,
        rule=policy.type,
        interval=k,
        value=_raw(sign, value),
        reason=f"no other trial has a value at interval {k} yet: nothing to compare with",
    )


def _at(others: list[History], k: int) -> list[float]:
    return [v for h in others if len(h) >= k and (v := h[k - 1]) is not None]


def _bandit(policy: PolicySpec, sign: float, own: History, others: list[History], k: int) -> Decision:
    mine, values = own[k - 1], _at(others, k)
    if not values:
        return _alone(policy, sign, k, mine)
    best = max(values if mine is None else [mine, *values])
    limits = []
    if policy.slack_factor is not None and best != 0:
        s = 1 + policy.slack_factor
        limits.append(best / s if best > 0 else best * s)
    if policy.slack_amount is not None:
        limits.append(best - policy.slack_amount)
    threshold = max(limits) if limits else None
    if mine is None:
        return msgspec.structs.replace(_diverged(policy, sign, k, threshold, len(values) + 1), best=_raw(sign, best))
    fired = threshold is not None and mine < threshold
    if threshold is None:
        reason = f"the best value at interval {k} is 0: a slack_factor cannot apply (use slack_amount)"
    else:
        verb = "is worse than" if fired else "is within"
        reason = (
            f"{_g(sign * mine)} at interval {k} {verb} the threshold {_g(sign * threshold)} "
            f"(best {_g(sign * best)}, slack_{'factor' if policy.slack_factor is not None else 'amount'} "
            f"{policy.slack_factor if policy.slack_factor is not None else policy.slack_amount:g})"
        )
    return Decision(
        terminate=fired,
        rule="bandit",
        interval=k,
        value=sign * mine,
        threshold=_raw(sign, threshold),
        best=sign * best,
        compared=len(values) + 1,
        reason=reason,
    )


def _mean(values: list[float]) -> float:
    """The mean of finite floats, exact to rounding and free of overflow (fsum, else a halved fsum)."""
    try:
        return math.fsum(values) / len(values)
    except OverflowError:
        return math.fsum(v / (2 * len(values)) for v in values) * 2


def _running(history: History) -> History:
    """The running average of the finite values 1..k at each k (None while there is none)."""
    out: History = []
    total, count = 0.0, 0
    for i, value in enumerate(history):
        if value is not None:
            total, count = total + value, count + 1
        if count == 0:
            out.append(None)
        elif math.isfinite(total):
            out.append(total / count)
        else:  # the plain sum overflowed: the exact mean is still finite
            out.append(_mean([v for v in history[: i + 1] if v is not None]))
    return out


def _median(values: list[float]) -> float:
    ordered, half = sorted(values), len(values) // 2
    return ordered[half] if len(values) % 2 else ordered[half - 1] / 2 + ordered[half] / 2


def _median_stopping(policy: PolicySpec, sign: float, own: History, others: list[History], k: int) -> Decision:
    """`others` holds the siblings' running averages (`_running`), so a sibling counts once it has k values."""
    averages = _at(others, k)
    mine = [v for v in own[:k] if v is not None]
    best = max(mine) if mine and own[k - 1] is not None else None
    if not averages:
        return _alone(policy, sign, k, best)
    median = _median(averages)
    if best is None:
        return _diverged(policy, sign, k, median, len(averages))
    fired = best < median
    verb = "is worse than" if fired else "is not worse than"
    return Decision(
        terminate=fired,
        rule="median_stopping",
        interval=k,
        value=sign * best,
        threshold=sign * median,
        compared=len(averages),
        reason=f"the trial's best {_g(sign * best)} over intervals 1..{k} {verb} the median "
        f"{_g(sign * median)} of {len(averages)} other trials' running averages",
    )


def _truncation(policy: PolicySpec, sign: float, own: History, others: list[History], k: int) -> Decision:
    mine, values = own[k - 1], _at(others, k)
    if not values:
        return _alone(policy, sign, k, mine)
    ranked = sorted([-math.inf if mine is None else mine, *values])
    cut = min(len(ranked) * (policy.truncation_percentage or 0) // 100, len(ranked) - 1)
    threshold = ranked[cut]  # the (cut+1)-th worst
    if mine is None:
        return _diverged(policy, sign, k, threshold if math.isfinite(threshold) else None, len(ranked))
    fired = mine < threshold
    reason = (
        f"{_g(sign * mine)} at interval {k} is among the {cut} worst of {len(ranked)} trials "
        f"({policy.truncation_percentage}%), below {_g(sign * threshold)}"
        if fired
        else f"{_g(sign * mine)} at interval {k} is not among the {cut} worst of {len(ranked)} trials "
        f"({policy.truncation_percentage}%)"
    )
    return Decision(
        terminate=fired,
        rule="truncation_selection",
        interval=k,
        value=sign * mine,
        threshold=sign * threshold,
        compared=len(ranked),
        reason=reason,
    )


_RULES: dict[str, Callable[[PolicySpec, float, History, list[History], int], Decision]] = {
    "bandit": _bandit,
    "median_stopping": _median_stopping,
    "truncation_selection": _truncation,
}
