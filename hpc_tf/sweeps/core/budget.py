"""How many bytes a sweep's trials take, worked out from its expressions and trial count alone (nothing is drawn
or allocated), so a sweep that cannot fit is refused at validation with its size instead of exhausting memory at
submit, and a trial that no program could be started with is refused before it is queued.

What is sized, value by value at its longest (a choice's longest value, a float's 24 characters, a quantized
int's digits):
- random and grid: trials.jsonl, one JSON line per trial. submit draws every trial and builds the file in memory
  before writing it, and each trial's first task reads it back whole: at 64 MiB of 1-character values (the most
  Python objects per byte) submit peaked at 355 MiB, at 50 MiB of floats at 237 MiB.
- bayesian: Optuna's journal, which stores each trial's distributions, so every trial carries all of a choice's
  values (each twice as long: the distribution is JSON inside JSON); every ask replays the whole journal.
Both are held to MAX_SWEEP_BYTES: 64 MiB is 100,000 trials (the most a sweep may have) of ten float parameters
with long names, 45 MiB, with room to spare, and keeps the submitting process and each task reading the file well
under a gigabyte (the 2 GiB RLIMIT_AS of tests/unit/test_hardening_sweeps.py).

A trial's sampled flags are on its command line: one argument may be at most MAX_ARG_STRLEN (Linux), all of them
at most MAX_TRIAL_ARGV_BYTES, half of the usual 2 MiB ARG_MAX (8 MiB stack / 4) that argv and environment share.
"""

from __future__ import annotations

from typing import Iterable

import msgspec

from ...core.envsize import MAX_ARG_STRLEN
from .bounds import reach
from .fields import Problems
from .spec import ParamExpr, SweepSpec

MAX_SWEEP_BYTES = 64 * 2**20
MAX_TRIAL_ARGV_BYTES = 2**20
FLOAT_TEXT = 24  # the longest float, as JSON or str(): -2.2250738585072014e-308
JOURNAL_TRIAL_BYTES = 2_000  # Optuna's per-trial records besides its parameters (create, user attr, state, value)
JOURNAL_PARAM_BYTES = 400  # one set_trial_param record, less the choices of its distribution
_encode = msgspec.json.Encoder().encode


def value_bytes(expr: ParamExpr) -> int:
    """The longest text one drawn value can take, as JSON (trials.jsonl) or as its flag's argv string."""
    if expr.kind == "choice":
        return max(_text_bytes(v) for v in expr.values)
    if expr.kind == "randint":
        return len(str((expr.upper or 1) - 1))
    q = expr.q
    if q is None or not float(q).is_integer():
        return FLOAT_TEXT
    got = (
        {"mu": expr.mu, "sigma": expr.sigma} if expr.mu is not None else {"min_value": expr.low, "max_value": expr.high}
    )
    top = reach(expr.kind, got) + q  # type: ignore[arg-type]  # an integral q makes ints: as many digits as the top
    return max(FLOAT_TEXT, len(str(int(top))) + 1)


def _text_bytes(value: object) -> int:
    return max(len(_encode(value)), len(str(value).encode("utf-8", "surrogatepass")))


def line_bytes(space: dict[str, ParamExpr], trials: int) -> int:
    """The longest line of trials.jsonl: {"trial":N,"hyperparameters":{"--flag":value,...}} and its newline."""
    params = sum(len(flag) + 3 + value_bytes(expr) for flag, expr in space.items()) + max(0, len(space) - 1)
    return len('{"trial":,"hyperparameters":{}}\n') + len(str(max(0, trials - 1))) + params


def journal_bytes(space: dict[str, ParamExpr]) -> int:
    """What one bayesian trial adds to Optuna's journal: its records, each parameter with its distribution."""
    return JOURNAL_TRIAL_BYTES + sum(_journal_param(flag, expr) for flag, expr in space.items())


def _journal_param(flag: str, expr: ParamExpr) -> int:
    return JOURNAL_PARAM_BYTES + 2 * len(flag) + sum(2 * len(_encode(v)) + 2 for v in expr.values)


def sweep_bytes(spec: SweepSpec) -> tuple[int, int]:
    """(bytes of all trials, bytes of the largest one): trials.jsonl, or Optuna's journal for bayesian."""
    count = spec.trial_count
    one = (
        journal_bytes(spec.parameter_space) if spec.sampling == "bayesian" else line_bytes(spec.parameter_space, count)
    )
    return count * one, one


def argv_bytes(flag: str, expr: ParamExpr) -> int:
    """What one sampled flag takes on the command line at most: `--flag` and its value, each with its NUL."""
    return len(flag) + 1 + value_bytes(expr) + 1


def size_text(size: int) -> str:
    """Bytes as a person reads them, to 3 digits: 512 bytes, 11.2 KiB, 1.05 MiB, 64 MiB, 94.3 GiB."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"


def check_space(space: Iterable[tuple[str, str, ParamExpr]], key: str, problems: Problems) -> None:
    """Every choice value fits one argv string, and a trial's sampled flags fit its command line."""
    total, largest, widest = 0, 0, ""
    for name, flag, expr in space:
        for value in expr.values:
            size = len(str(value).encode("utf-8", "surrogatepass")) + 1
            if size > MAX_ARG_STRLEN:
                problems.add(
                    f"{key}.{name}",
                    f"a choice value is {size} bytes as a command-line argument (its NUL included): Linux starts no "
                    f"program with an argument over {MAX_ARG_STRLEN} bytes (MAX_ARG_STRLEN, 'Argument list too "
                    "long'); pass a file's path instead",
                    value,
                )
                return
        size = argv_bytes(flag, expr)
        total += size
        if size > largest:
            largest, widest = size, name
    if total > MAX_TRIAL_ARGV_BYTES:
        problems.add(
            key,
            f"a trial's sampled flags would take up to {size_text(total)} of its command line; at most "
            f"{size_text(MAX_TRIAL_ARGV_BYTES)} (argv and environment share Linux's ARG_MAX, usually 2 MiB): "
            f"shorten the values (the longest: {widest}, {size_text(largest)})",
        )


def check_sweep(spec: SweepSpec, key: str, runs: object, problems: Problems) -> None:
    """The whole sweep's trials fit MAX_SWEEP_BYTES; `key` and `runs` are max_total_runs as the user wrote it."""
    total, one = sweep_bytes(spec)
    if total <= MAX_SWEEP_BYTES:
        return
    what = (
        "in Optuna's journal, which every trial's ask reads whole"
        if spec.sampling == "bayesian"
        else "in trials.jsonl, drawn in memory at submit and read whole by every trial"
    )
    fits = max(1, MAX_SWEEP_BYTES // one)
    space = spec.parameter_space
    share = _journal_param if spec.sampling == "bayesian" else argv_bytes
    widest = max(space, key=lambda flag: share(flag, space[flag]))
    problems.add(
        key,
        f"the sweep's trials would take about {size_text(total)} {what} ({spec.trial_count} trials × up to "
        f"{size_text(one)} each); at most {size_text(MAX_SWEEP_BYTES)}: lower it to {fits} or fewer, or shorten "
        f"the parameters' values (the longest: {widest})",
        runs,
    )
