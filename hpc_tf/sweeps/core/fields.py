"""Value readers for the `hyperdrive:` block. Each checks one value and, when it is wrong, records a Problem
that names the dotted key, the value and what is allowed, then returns None: the caller carries on, so
every problem of a config is reported at once (msgspec would stop at the first).
"""

from __future__ import annotations

import difflib
import math
from typing import Any, Iterable, Mapping

from ...errors import MISSING, Problem

UNSAFE_CHARS = "\n\r\x00"


class Problems:
    """The problems found so far, every one naming the same source (a file, or `HyperDriveConfig(...)`)."""

    def __init__(self, source: str | None) -> None:
        self.source = source
        self.found: list[Problem] = []

    def add(self, key: str, message: str, value: Any = MISSING) -> None:
        self.found.append(Problem(key, message, value, source=self.source))

    def mapping(self, value: Any, key: str, holds: str) -> Mapping[Any, Any] | None:
        """The value when it is a mapping; `holds` says what belongs in it."""
        if isinstance(value, Mapping):
            return value
        self.add(key, f"must be a mapping ({holds})", value)
        return None

    def known(self, data: Mapping[Any, Any], allowed: Iterable[str], key: str) -> None:
        """'unknown key; did you mean ...' for every key not in `allowed` (as validation.convert words it)."""
        names = list(allowed)
        for name, value in data.items():
            if name in names:
                continue
            guess = difflib.get_close_matches(str(name), names, n=1, cutoff=0.6)
            hint = f"; did you mean {guess[0]!r}?" if guess else f"; valid keys: {', '.join(names)}"
            self.add(f"{key}.{name}", "unknown key" + hint, value)

    def integer(self, value: Any, key: str, low: int, high: int | None = None, extra: str = "") -> int | None:
        """An int in [low, high]; true/false and 3.0 are refused (a bool is not a number here)."""
        if isinstance(value, int) and not isinstance(value, bool) and low <= value and (high is None or value <= high):
            return value
        allowed = f"an integer from {low} to {high}" if high is not None else f"an integer ≥ {low}"
        self.add(key, f"must be {allowed}{extra}", value)
        return None

    def number(self, value: Any, key: str, positive: bool = False, what: str = "") -> float | None:
        """A finite int or float (> 0 when `positive`), as a float."""
        number = as_float(value)
        if number is not None and (number > 0 or not positive):
            return number
        allowed = "a finite number" + (" > 0" if positive else "")
        self.add(key, f"must be {allowed}{what}", value)
        return None

    def text(self, value: Any, key: str, what: str) -> str | None:
        """A non-blank string without a newline, carriage return or NUL byte, and valid Unicode (it is written to
        sweep.json and given to every trial: a lone surrogate cannot be encoded)."""
        if isinstance(value, str) and value.strip() and not any(c in value for c in UNSAFE_CHARS):
            if is_unicode(value):
                return value
            self.add(key, f"must be valid Unicode text, not a lone surrogate ({what})", value)
            return None
        self.add(key, f"must be a non-empty string without a newline ({what})", value)
        return None


def is_unicode(text: str) -> bool:
    """Whether `text` can be written as UTF-8 (YAML's "\\ud800" gives a lone surrogate, which cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def as_float(value: Any) -> float | None:
    """A finite float from an int or float; None for anything else (bools, text, NaN, ±inf, huge ints)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def normalized(word: str, suffixes: tuple[str, ...] = ()) -> str:
    """`Median_Stopping`, `MedianStoppingPolicy` → `medianstopping`: class names and any case as aliases."""
    text = word.strip().lower().replace("_", "").replace("-", "").replace(" ", "")
    for suffix in suffixes:
        if text.endswith(suffix) and text != suffix:
            return text[: -len(suffix)]
    return text
