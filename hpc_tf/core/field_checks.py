"""Per-field checks of the config, run after the type check: each returns (sub-key, message) for the
first bad entry of a field, or None. `validation.convert` turns them into Problems."""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from .envsize import MAX_ARG_STRLEN, env_string_bytes
from .spec import (
    CONDA_SPEC_RE,
    ENV_NAME_RE,
    HETJOB_JOB_OPTIONS,
    MODULE_RE,
    NAME_RE,
    RESERVED_SBATCH_OPTIONS,
    SBATCH_OPTION_RE,
    SLURM_MEM_RE,
    SLURM_TIME_RE,
    EstimatorSpec,
    RoleOptions,
    SlurmOptions,
)

_CAUSES = ("preemption", "timeout", "node_failure")

# Field checks: each returns (sub-key, message) for the first bad entry, or None. They run after the type check.


def _check_entries(
    what: str, scalars: tuple[type, ...], allow_none: bool, allow_list: bool
) -> Callable[[Any], tuple[str, str] | None]:
    """One clear message per bad entry of a mapping, naming the entry."""

    def check(value: Mapping[str, Any]) -> tuple[str, str] | None:
        for key, item in value.items():
            ok = (
                (item is None and allow_none)
                or isinstance(item, scalars)
                or (allow_list and isinstance(item, list) and all(isinstance(i, scalars) for i in item))
            )
            if not ok:
                return key, f"expected {what}"
            if key == "":
                return key, "a name cannot be empty"
        return None

    return check


def _pattern(regex: re.Pattern[str], what: str) -> Callable[[Any], tuple[str, str] | None]:
    return lambda value: None if value is None or regex.match(str(value)) else ("", f"expected {what}")


def _regexes(value: Mapping[str, str]) -> tuple[str, str] | None:
    for name, pattern in value.items():
        try:
            groups = re.compile(pattern).groups
        except re.error as exc:
            return name, f"not a valid regular expression: {exc}"
        except (OverflowError, RecursionError, ValueError) as exc:
            return name, f"not a usable regular expression ({type(exc).__name__}: {exc})"
        if groups != 1:
            return name, f"needs exactly one group (the value), has {groups}"
    return None


def _env_names(value: Mapping[str, Any]) -> tuple[str, str] | None:
    for name in value:
        if not ENV_NAME_RE.match(name):
            return (
                name,
                "invalid environment variable name: expected letters, digits and '_', not starting with a digit",
            )
        item = value[name]
        text = ("1" if item else "0") if isinstance(item, bool) else str(item)
        if isinstance(item, (str, int, float)) and env_string_bytes(name, text) > MAX_ARG_STRLEN:
            return name, (
                f"{env_string_bytes(name, text)} bytes as {name}=value: Linux starts no program with an environment "
                f"string over {MAX_ARG_STRLEN} bytes (MAX_ARG_STRLEN); pass a file's path instead"
            )
    return _check_entries("a string, number or boolean", (str, int, float, bool), False, False)(value)


def _sbatch_options(value: Mapping[str, Any]) -> tuple[str, str] | None:
    for name in value:
        if not SBATCH_OPTION_RE.match(name):
            return name, "not a long sbatch option name (letters, digits, '_' or '-')"
        option = name.replace("_", "-")
        taken = sorted(r for r in RESERVED_SBATCH_OPTIONS if r.startswith(option))
        if taken:  # sbatch takes any unambiguous prefix of a long option: `outp` is --output
            what = (
                "set by hpc_tf itself" if option in taken else f"sbatch reads it as --{taken[0]}, set by hpc_tf itself"
            )
            return name, f"{what}; it cannot be overridden here"
    return _check_entries("a string, integer, true/false or null (a bare flag)", (str, int, bool), True, False)(value)


def _component_options(value: Mapping[str, Any]) -> tuple[str, str] | None:
    """A role's additional_parameters: options of its own component, never one Slurm passes on to the others."""
    for name in value:
        option = str(name).replace("_", "-")
        if SBATCH_OPTION_RE.match(str(name)) and option in HETJOB_JOB_OPTIONS:
            return name, (
                f"--{option} is an option of the whole job (sbatch passes it from the first component of a "
                "heterogeneous job to the others, or reads it there only): put it in "
                "compute_target.additional_parameters"
            )
    return _sbatch_options(value)


CHECKS: dict[type, dict[str, Callable[[Any], tuple[str, str] | None]]] = {
    EstimatorSpec: {
        "experiment": _pattern(
            NAME_RE, "1-100 characters from letters, digits, '.', '_' and '-', not starting with '.', '_' or '-'"
        ),
        "script_params": _check_entries(
            "a string, number, boolean, null (a bare flag) or a list of strings/numbers",
            (str, int, float, bool),
            True,
            True,
        ),
        "environment_variables": _env_names,
        "pip_packages": lambda v: _each(v, _pep508),
        "modules": lambda v: _each(
            v,
            lambda m: None
            if MODULE_RE.match(m)
            else "expected a module name such as 'cuda/12.2' (letters, digits, '.', '_', '+', '-', '/')",
        ),
        "setup": lambda v: _each(v, lambda line: None if line.strip() else "an empty setup line"),
        "conda_packages": lambda v: _each(
            v,
            lambda p: None
            if CONDA_SPEC_RE.match(p)
            else "expected a conda package spec such as 'numpy' or 'numpy>=1.26'",
        ),
        "metric_patterns": _regexes,
        "mpi_plugin": _pattern(
            re.compile(r"^[a-z0-9_]+$"), "an srun --mpi plugin name such as 'pmix' (see `srun --mpi=list`)"
        ),
        "checkpoint_dir": lambda v: None
        if v and not v.startswith(("/", "~")) and ".." not in v.split("/")
        else ("", "expected a relative path inside the run directory (no '..'): each run keeps its own checkpoints"),
        "max_restarts": lambda v: next(
            ((k, "expected one of preemption, timeout, node_failure") for k in v if k not in _CAUSES), None
        )
        if isinstance(v, dict)
        else None,
        "requeue_on": lambda v: next(((f"[{i}]", "given twice") for i, cause in enumerate(v) if cause in v[:i]), None),
        "compute_target": lambda v: None
        if not isinstance(v, str) or NAME_RE.match(v)
        else ("", "expected a target name (letters, digits, '.', '_', '-') or a mapping of Slurm options"),
    },
    SlurmOptions: {
        "time": lambda v: None
        if not isinstance(v, str) or SLURM_TIME_RE.match(v)
        else ("", "expected minutes or a Slurm time such as '30', '1:00:00' or '2-00:00:00'"),
        "mem": _pattern(SLURM_MEM_RE, "a Slurm memory size such as '4000', '16G' or '500M'"),
        "additional_parameters": _sbatch_options,
    },
    RoleOptions: {
        "mem": _pattern(SLURM_MEM_RE, "a Slurm memory size such as '4000', '16G' or '500M'"),
        "additional_parameters": _component_options,
    },
}


def _each(items: list[str], check: Callable[[str], str | None]) -> tuple[str, str] | None:
    for i, item in enumerate(items):
        message = check(item)
        if message:
            return f"[{i}]", message
    return None


def _pep508(text: str) -> str | None:
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        Requirement(text)
    except InvalidRequirement as exc:
        return f"not a valid pip requirement (PEP 508): {exc}"
    return None
