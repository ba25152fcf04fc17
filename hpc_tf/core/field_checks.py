"""Per-field checks of the config, run after the type check: each returns (sub-key, message) for the
first bad entry of a field, or None. `validation.convert` turns them into Problems."""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from .envsize import MAX_ARG_STRLEN, env_string_bytes
from .slurm_options import (
    HPC_TF_OPTIONS,
    SBATCH_ALIASES,
    SBATCH_FLAG_OPTIONS,
    option_name,
    sbatch_option,
    time_parts,
)
from .spec import (
    CONDA_SPEC_RE,
    ENV_NAME_RE,
    HETJOB_JOB_OPTIONS,
    MODULE_RE,
    NAME_RE,
    RUN_DIR_ENTRIES,
    SBATCH_OPTION_RE,
    SLURM_MEM_RE,
    SLURM_TIME_RE,
    EstimatorSpec,
    RoleOptions,
    SlurmOptions,
)

_CAUSES = ("preemption", "timeout", "node_failure")
NAME_MAX, PATH_MAX = 255, 4096  # bytes of one file name and of a path (linux/limits.h): mkdir's ENAMETOOLONG past them

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
    """additional_parameters: names as sbatch reads them (getopt_long: the exact name, else the one option it is a
    prefix of); none that sbatch finds ambiguous, none hpc_tf sets itself, no option given twice."""
    seen: dict[str, str] = {}
    for name in value:
        if not SBATCH_OPTION_RE.match(name):
            return name, "not a long sbatch option name (letters, digits, '_' or '-')"
        bad = _sbatch_name(name)
        if bad:
            return name, bad
        option = option_name(name)
        same = SBATCH_ALIASES.get(option, option)
        if same in seen:
            return name, f"--{option} is given twice ({seen[same]!r} and {name!r}): sbatch would take the last alone"
        seen[same] = name
        flag_value = value[name]
        if option in SBATCH_FLAG_OPTIONS and flag_value is not None and not isinstance(flag_value, bool):
            # `hold: no` is the text 'no' in YAML 1.2: it would reach sbatch as --hold=no
            return name, f"--{option} takes no value: write true (the bare flag) or false (left out)"
    return _check_entries("a string, integer, true/false or null (a bare flag)", (str, int, bool), True, False)(value)


def _sbatch_name(name: str) -> str | None:
    """Why sbatch would read `--name` as something else than the user's own option, or None."""
    found = sbatch_option(name.replace("_", "-"))
    if found.ambiguous:
        options = ", ".join(f"--{c}" for c in found.candidates)
        return f"sbatch cannot tell which option it abbreviates ({options}) and refuses it: give the whole name"
    if found.option in HPC_TF_OPTIONS:
        exact = found.option == name.replace("_", "-")
        what = f"--{found.option} is" if exact else f"sbatch reads it as --{found.option}, which is"
        return f"{what} set by hpc_tf itself: {HPC_TF_OPTIONS[found.option]}"
    return None


def _component_options(value: Mapping[str, Any]) -> tuple[str, str] | None:
    """A role's additional_parameters: options of its own component, never one Slurm passes on to the others (under
    any name sbatch reads as one: `accou` is --account)."""
    for name in value:
        if not SBATCH_OPTION_RE.match(str(name)) or _sbatch_name(str(name)):
            continue  # _sbatch_options says why
        option = option_name(str(name))
        if option in HETJOB_JOB_OPTIONS:
            read = "" if option == str(name).replace("_", "-") else f"sbatch reads it as --{option}: "
            return name, (
                f"{read}--{option} is an option of the whole job (sbatch passes it from the first component of a "
                "heterogeneous job to the others, or reads it there only): put it in "
                "compute_target.additional_parameters"
            )
    return _sbatch_options(value)


def _slurm_time(value: Any) -> tuple[str, str] | None:
    """compute_target.time: a Slurm time whose parts mean what they look like (sbatch adds them up unchecked)."""
    if not isinstance(value, str):
        return None
    if not SLURM_TIME_RE.match(value):
        return "", "expected minutes or a Slurm time such as '30', '1:00:00' or '2-00:00:00'"
    parts = time_parts(value)
    if parts is None:  # UNLIMITED, INFINITE
        return None
    days, hours, minutes, seconds = parts
    total = days * 86400 + hours * 3600 + minutes * 60 + seconds
    if total == 0:
        return "", "Slurm reads a time limit of 0 as no limit at all: write UNLIMITED if that is meant"
    colons, with_days = value.count(":"), "-" in value
    bounded = [(hours, "hours", 24)] if with_days else []
    bounded += [(minutes, "minutes", 60)] if colons == 2 or (with_days and colons == 1) else []
    bounded += [(seconds, "seconds", 60)] if colons == 2 or (colons == 1 and not with_days) else []
    over = next(((n, unit, bound) for n, unit, bound in bounded if n >= bound), None)
    if over is None:
        return None
    shown = _time_text(total, with_days, colons)
    rounded = f", which Slurm rounds up to {-(-total // 60)} minutes" if total % 60 else ""
    return "", (
        f"{over[0]} {over[1]} (at most {over[2] - 1} in this place): sbatch would add the parts up and read it as "
        f"{shown!r}{rounded}; write {shown!r} if that is meant"
    )


def _time_text(total: int, with_days: bool, colons: int) -> str:
    """`total` seconds in the shape the user wrote (D-H, D-H:M, D-H:M:S, H:M:S or M:S), each part in its range."""
    days, rest = divmod(total, 86400) if with_days else (0, total)
    hours, rest = divmod(rest, 3600) if with_days or colons == 2 else (0, rest)
    minutes, seconds = divmod(rest, 60)
    if with_days:
        return (
            f"{days}-{hours:02d}" + (f":{minutes:02d}" if colons else "") + (f":{seconds:02d}" if colons == 2 else "")
        )
    return f"{hours}:{minutes:02d}:{seconds:02d}" if colons == 2 else f"{minutes}:{seconds:02d}"


def _checkpoint_dir(value: str) -> tuple[str, str] | None:
    """A folder of its own inside the run directory: not outside it, not the run directory, none of its entries."""
    parts = [p for p in value.split("/") if p not in ("", ".")]
    if not value or value.startswith(("/", "~")) or ".." in parts:
        return "", "expected a relative path inside the run directory (no '..'): each run keeps its own checkpoints"
    if not parts:
        return "", "is the run directory itself: give checkpoints a folder of their own, such as 'checkpoints'"
    if parts[0] in RUN_DIR_ENTRIES:
        return "", (
            f"{parts[0]!r} is the run directory's own: give checkpoints a folder of their own, such as "
            f"'checkpoints' (the run directory holds {', '.join(sorted(RUN_DIR_ENTRIES))})"
        )
    # the task's runtime makes the folder (mkdir): a name or path no Linux filesystem takes would fail every task
    longest = max(len(p.encode("utf-8", "surrogatepass")) for p in parts)
    if longest > NAME_MAX or len(value.encode("utf-8", "surrogatepass")) >= PATH_MAX:
        return "", (
            f"too long for a folder ({longest} bytes in one name, {len(value.encode('utf-8', 'surrogatepass'))} in "
            f"all): Linux takes at most {NAME_MAX} bytes in a name and fewer than {PATH_MAX} in a path, so the job "
            "could not make its checkpoint folder"
        )
    return None


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
        "checkpoint_dir": _checkpoint_dir,
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
        "time": _slurm_time,
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
