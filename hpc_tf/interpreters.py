"""Asking a Python interpreter what it has, without importing anything heavy here (used on the submit
side before queueing, and by each task before it starts)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

from .errors import HpcTfError


class InterpreterError(HpcTfError):
    """The interpreter could not be run."""


def is_this_interpreter(python: str) -> bool:
    return os.path.realpath(python) == os.path.realpath(sys.executable)


def missing_modules(python: str, names: list[str]) -> list[str]:
    """Which of `names` the interpreter `python` cannot import (looked up with find_spec, never imported)."""
    if not names:
        return []
    if is_this_interpreter(python):
        return [name for name in names if importlib.util.find_spec(name) is None]
    code = "import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))"
    try:
        proc = subprocess.run([python, "-c", code, *names], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InterpreterError(f"cannot run the job's Python {python}: {exc}") from None
    if proc.returncode != 0:
        raise InterpreterError(f"cannot run the job's Python {python}: {proc.stderr.strip()[-300:]}")
    return proc.stdout.split()


def missing_text(python: str, needed: list[tuple[str, str]]) -> str:
    """'' when every (module, how to install) is there, else one line naming what is missing and how to get it."""
    absent = set(missing_modules(python, [name for name, _ in needed]))
    missing = [f"{name} (install: {how})" for name, how in needed if name in absent]
    return f"missing in {python}: " + "; ".join(missing) if missing else ""


def shell_exit_code(returncode: int) -> int:
    """A child killed by signal N is reported the way shells and Slurm do: 128 + N."""
    return returncode if returncode >= 0 else 128 - returncode
