"""Asking a Python interpreter what it has, without importing anything heavy here (used on the submit
side before queueing, and by each task before it starts)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

from ..errors import HpcTfError


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
    return _ask(python, code, *names).split()


def python_version(python: str) -> str:
    """`sys.version` of an interpreter (part of a job environment's key)."""
    if is_this_interpreter(python):
        return sys.version
    return _ask(python, "import sys; print(sys.version)").strip()


def has_distributions(python: str, specs: list[str]) -> bool:
    """Whether `python` already has a distribution satisfying every spec (`numpy`, `numpy>=1.26`): with no
    conda on the machine, a job's conda_packages it already has are used as they are."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        wanted = [Requirement(spec.replace(" ", "")) for spec in specs]
    except InvalidRequirement:
        return False
    code = (
        "import sys, importlib.metadata as m\n"
        "for n in sys.argv[1:]:\n"
        "    try: print(m.version(n))\n"
        "    except m.PackageNotFoundError: print('-')\n"
    )
    try:
        versions = _ask(python, code, *(r.name for r in wanted)).split()
    except InterpreterError:
        return False
    return len(versions) == len(wanted) and all(
        v != "-" and r.specifier.contains(v, prereleases=True) for r, v in zip(wanted, versions, strict=True)
    )


def own_site_packages(python: str) -> tuple[str, ...]:
    """The submitting environment's own site-packages (a virtualenv's, a conda env's), when `python` runs
    in one: what `inherit_base_packages` must show the job besides the base interpreter's packages."""
    if not is_this_interpreter(python) or sys.prefix == sys.base_prefix:
        return ()
    import site
    from pathlib import Path

    return tuple(p for p in site.getsitepackages() if Path(p).is_dir())


def _ask(python: str, code: str, *args: str) -> str:
    """stdout of `python -c code args`; an interpreter that cannot run it is an InterpreterError."""
    try:
        proc = subprocess.run([python, "-c", code, *args], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InterpreterError(f"cannot run the job's Python {python}: {exc}") from None
    if proc.returncode != 0:
        raise InterpreterError(f"cannot run the job's Python {python}: {proc.stderr.strip()[-300:]}")
    return proc.stdout


def missing_text(python: str, needed: list[tuple[str, str]]) -> str:
    """'' when every (module, how to install) is there, else one line naming what is missing and how to get it."""
    absent = set(missing_modules(python, [name for name, _ in needed]))
    missing = [f"{name} (install: {how})" for name, how in needed if name in absent]
    return f"missing in {python}: " + "; ".join(missing) if missing else ""
