"""The early-termination policy of a sweep (`policy:`, alias `early_termination:`) → a PolicySpec.

HyperDrive's rules: a bandit policy takes exactly one of slack_factor and slack_amount; truncation_selection
requires truncation_percentage (1 to 99); a setting of one policy type is refused with another. The type
may be written as HyperDrive's class name (`BanditPolicy`); `none`, `NoTerminationPolicy` or null mean none.
"""

from __future__ import annotations

from typing import Any

from .fields import Problems, normalized
from .spec import PolicySpec

POLICY_NAMES = {
    "bandit": "bandit",
    "medianstopping": "median_stopping",
    "truncationselection": "truncation_selection",
    "notermination": None,
    "none": None,
}
POLICY_KEYS = (
    "type",
    "evaluation_interval",
    "delay_evaluation",
    "slack_factor",
    "slack_amount",
    "truncation_percentage",
)
POLICY_ONLY = {"slack_factor": "bandit", "slack_amount": "bandit", "truncation_percentage": "truncation_selection"}
ALLOWED_POLICIES = "bandit, median_stopping, truncation_selection or none"


def parse_policy(value: Any, path: str, problems: Problems) -> PolicySpec | None:
    """The early-termination policy; None for `none`, `NoTerminationPolicy` or null."""
    bare = isinstance(value, str) or value is None
    block = {"type": value} if bare else problems.mapping(value, path, "type, evaluation_interval, ...")
    if block is None:
        return None
    if not bare:
        problems.known(block, POLICY_KEYS, path)
        if "type" not in block:
            problems.add(f"{path}.type", f"is required: {ALLOWED_POLICIES}")
            return None
    given = {k: v for k, v in block.items() if v is not None and k in POLICY_KEYS}
    given.pop("type", None)
    kind = _policy_type(block["type"], path if bare else f"{path}.type", problems)
    if kind is None:
        for name, extra in given.items():
            problems.add(
                f"{path}.{name}", "only used with a policy type (bandit, median_stopping, truncation_selection)", extra
            )
    if not kind:
        return None
    ints = {"evaluation_interval": 1, "delay_evaluation": 0}
    read = {n: problems.integer(given.get(n, low), f"{path}.{n}", low) for n, low in ints.items()}
    for name, owner in POLICY_ONLY.items():
        if name in given and kind != owner:
            problems.add(f"{path}.{name}", f"only used with policy type {owner!r} (type is {kind!r})", given[name])
    slack: dict[str, float | None] = {}
    if kind == "bandit":
        names = ("slack_factor", "slack_amount")
        slack = {n: problems.number(given[n], f"{path}.{n}", positive=True) for n in names if n in given}
        if len(slack) != 1:
            found = "both" if slack else "neither"
            problems.add(
                f"{path}.slack_factor",
                f"a bandit policy takes exactly one of slack_factor or slack_amount (got {found})",
            )
    percent = None
    if kind == "truncation_selection":
        if "truncation_percentage" in given:
            percent = problems.integer(given["truncation_percentage"], f"{path}.truncation_percentage", 1, 99)
        else:
            problems.add(f"{path}.truncation_percentage", "is required for truncation_selection: an integer 1 to 99")
    if None in read.values() or None in slack.values():
        return None
    return PolicySpec(type=kind, truncation_percentage=percent, **read, **slack)  # type: ignore[arg-type]


def _policy_type(value: Any, where: str, problems: Problems) -> str | None:
    """bandit | median_stopping | truncation_selection; None for none/null; "" when wrong (reported)."""
    if value is None:
        return None
    kind = normalized(value, ("policy",)) if isinstance(value, str) else "?"
    if kind in POLICY_NAMES:
        return POLICY_NAMES[kind]
    problems.add(where, f"valid values: {ALLOWED_POLICIES} (or the class names, e.g. BanditPolicy)", value)
    return ""
