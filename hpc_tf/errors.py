"""The error types hpc_tf raises, each carrying what a user needs to act on it."""

from __future__ import annotations

from typing import Any, Sequence

import msgspec


class HpcTfError(Exception):
    """Root of every error hpc_tf raises on purpose; the CLI prints it without a traceback."""

    exit_status = 1


class _Missing:
    """No value to show (a missing key, or a rule about several keys)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Problem(msgspec.Struct, frozen=True):
    """One thing wrong with a config: where (file, dotted key), what was given, what is allowed."""

    key: str
    message: str
    value: object = MISSING
    source: str | None = None

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        got = "" if self.value is MISSING else f" (got {_shown(self.value)})"
        return f"{where}{self.key or '<top level>'}: {self.message}{got}"


def _shown(value: object, limit: int = 200) -> str:
    """A value as the user wrote it, cut short: a huge value must not make a huge message."""
    try:
        text = repr(value)
    except ValueError:  # an integer with more digits than Python will print
        return f"<an integer of about {int(value.bit_length() * 0.30103)} digits>" if isinstance(value, int) else "?"
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


class ConfigError(HpcTfError):
    """The config (file, Python arguments or --set overrides) is invalid; lists every problem."""

    exit_status = 2

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = "invalid config" if count == 1 else f"invalid config ({count} problems)"
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in self.problems))


class UsageError(HpcTfError):
    """A command-line argument or API argument is wrong (not the config itself)."""

    exit_status = 2


class SubmissionError(HpcTfError):
    """The scheduler refused or failed to take the job."""

    def __init__(self, message: str, argv: Sequence[str] = (), stderr: str = "", run_dir: str = "") -> None:
        self.argv = list(argv)
        self.stderr = stderr
        self.run_dir = run_dir
        parts = [message]
        if self.argv:
            parts.append("command: " + " ".join(self.argv))
        if stderr.strip():
            parts.append("scheduler said: " + stderr.strip()[-2000:])
        if run_dir:
            parts.append(f"run directory: {run_dir}")
        super().__init__("\n".join(parts))


class RunError(HpcTfError):
    """A run could not be found, read or controlled."""


class JobFailedError(HpcTfError):
    """A job ended in a state other than COMPLETED; carries the tail of its stderr."""

    def __init__(self, run_dir: str, state: str, exit_code: int | None, stderr_tail: str) -> None:
        self.run_dir = run_dir
        self.state = state
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail
        msg = f"run {run_dir} ended {state}" + (f" with exit code {exit_code}" if exit_code is not None else "")
        if stderr_tail.strip():
            msg += "\nlast lines of stderr:\n" + stderr_tail.rstrip()
        super().__init__(msg)
