"""The estimator config: its schema, loading from YAML or keywords, and every validation rule.

This is the only module that knows the config's shape. It returns a fully validated
`EstimatorSpec` or raises one `ConfigError` that lists every problem found.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError, Problem

Scalar = Union[str, int, float, bool]
ParamValue = Union[Scalar, None, list[Scalar]]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Slurm --time forms: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, or UNLIMITED.
SLURM_TIME_RE = re.compile(r"^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+(:\d{1,2}(:\d{1,2})?)?|UNLIMITED|INFINITE)$")
SBATCH_OPTION_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
DISTRIBUTED_BACKENDS = ("mpi", "ps", "multiworker")
# Options hpc_tf sets itself; a target that sets them through additional_parameters would
# silently change the job's layout or break the run directory.
RESERVED_SBATCH_OPTIONS = frozenset(
    {"nodes", "ntasks", "ntasks-per-node", "output", "error", "chdir", "job-name", "array", "wrap", "parsable"}
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlurmOptions(_Strict):
    """Slurm options of a compute target, with Slurm's own option names in snake_case."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: str | int | None = None
    cpus_per_task: int | None = Field(None, ge=1, le=4096)
    mem: str | None = None
    gpus_per_node: int | None = Field(None, ge=0, le=64)
    constraint: str | None = None
    exclude: str | None = None
    reservation: str | None = None
    additional_parameters: dict[str, Union[str, int, bool, None]] = Field(default_factory=dict)

    @field_validator("time")
    @classmethod
    def _time(cls, value: str | int | None) -> str | int | None:
        if isinstance(value, int) and value < 1:
            raise ValueError("must be at least 1 minute")
        if isinstance(value, str) and not SLURM_TIME_RE.match(value):
            raise ValueError("expected minutes or a Slurm time such as '30', '1:00:00' or '2-00:00:00'")
        return value

    @field_validator("mem")
    @classmethod
    def _mem(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d+[KMGT]?B?", value.upper()):
            raise ValueError("expected a Slurm memory size such as '4000', '16G' or '500M'")
        return value

    @field_validator("additional_parameters")
    @classmethod
    def _extra(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            flag = name.replace("_", "-")
            if not SBATCH_OPTION_RE.match(name):
                raise ValueError(f"{name!r} is not a long sbatch option name (letters, digits, '_' or '-')")
            if flag in RESERVED_SBATCH_OPTIONS:
                raise ValueError(f"{name!r} is set by hpc_tf itself and cannot be overridden here")
        return value


class EstimatorSpec(_Strict):
    """A TensorFlow training job, with the Azure ML estimator's parameter names and defaults."""

    experiment: str = "default"
    source_directory: str
    entry_script: str
    script_params: dict[str, ParamValue] = Field(default_factory=dict)
    compute_target: Union[str, dict[str, Any], None] = None
    conda_packages: list[str] = Field(default_factory=list)
    pip_packages: list[str] = Field(default_factory=list)
    use_gpu: bool = False
    node_count: int = Field(1, ge=1, le=4096)
    process_count_per_node: int = Field(1, ge=1, le=256)
    distributed_backend: Literal["mpi", "ps", "multiworker"] | None = None
    worker_count: int = Field(1, ge=1, le=4096)
    parameter_server_count: int = Field(1, ge=0, le=1024)
    environment_variables: dict[str, Union[str, int, float, bool]] = Field(default_factory=dict)
    max_run_duration_seconds: int | None = Field(None, ge=1)

    @field_validator("experiment")
    @classmethod
    def _experiment(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError("expected 1-100 characters from letters, digits, '.', '_' and '-', not starting with '.', '_' or '-'")
        return value

    @field_validator("environment_variables")
    @classmethod
    def _env_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [name for name in value if not ENV_NAME_RE.match(name)]
        if bad:
            raise ValueError(f"invalid environment variable name(s) {bad}: expected letters, digits and '_', not starting with a digit")
        return value

    @field_validator("script_params")
    @classmethod
    def _params(cls, value: dict[str, Any]) -> dict[str, Any]:
        if any(key == "" for key in value):
            raise ValueError("an argument name cannot be empty")
        return value


def script_argv(params: Mapping[str, ParamValue]) -> list[str]:
    """script_params → argv, in the given order: None is a bare flag, a list repeats the flag."""
    argv: list[str] = []
    for key, value in params.items():
        if value is None:
            argv.append(key)
        elif isinstance(value, list):
            for item in value:
                argv += [key, _arg_text(item)]
        else:
            argv += [key, _arg_text(value)]
    return argv


def _arg_text(value: Scalar) -> str:
    return str(value)


def env_text(value: str | int | float | bool) -> str:
    """How an environment_variables value is written into the job's environment."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


# ----------------------------------------------------------------------------- loading


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a mapping; a syntax error becomes a ConfigError."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem("", f"config file not found: {path}")]) from None
    except OSError as exc:
        raise ConfigError([Problem("", f"cannot read config file {path}: {exc.strerror}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([Problem("", f"not valid YAML: {exc}", source=str(path))]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([Problem("", "expected a mapping of config keys at the top level", data, True, str(path))])
    return data


def apply_overrides(data: dict[str, Any], overrides: Sequence[str], source: str = "--set") -> dict[str, Any]:
    """Apply `KEY=VALUE` overrides (dotted keys, YAML values) to a copy of a raw config mapping."""
    import copy

    import yaml

    data = copy.deepcopy(data)
    problems = []
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            problems.append(Problem(key or item, "expected KEY=VALUE (for example node_count=2)", item, True, source))
            continue
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        parts = key.split(".")
        node = data
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                problems.append(Problem(".".join(parts[: depth + 1]), "is not a mapping, cannot set a key inside it", child, True, source))
                break
            node = child
        else:
            node[parts[-1]] = value
    if problems:
        raise ConfigError(problems)
    return data


def validate(data: Mapping[str, Any], base_dir: str | Path, source: str | None = None) -> EstimatorSpec:
    """Validate a raw config mapping; return the spec with an absolute source_directory.

    Every problem is collected (unsafe characters, schema, files, unsupported features)
    and raised together as one ConfigError.
    """
    problems = list(_unsafe_strings(data, "", source))
    spec = None
    try:
        spec = EstimatorSpec.model_validate(dict(data))
    except ValidationError as exc:
        problems += _pydantic_problems(exc, EstimatorSpec, source)
    if spec is not None:
        spec, more = _check_semantics(spec, Path(base_dir), source)
        problems += more
    if problems:
        raise ConfigError(_dedupe(problems))
    assert spec is not None
    return spec


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> EstimatorSpec:
    """Load, override and validate a YAML config; relative paths are relative to the file."""
    path = Path(path)
    data = apply_overrides(load_yaml(path), overrides) if overrides else load_yaml(path)
    return validate(data, path.resolve().parent, str(path))


# ----------------------------------------------------------------------------- checks


def _unsafe_strings(value: Any, key: str, source: str | None) -> list[Problem]:
    """Newlines, carriage returns and NUL bytes are refused in every string (keys too)."""
    found: list[Problem] = []
    if isinstance(value, str):
        if any(ch in value for ch in "\n\r\x00"):
            found.append(Problem(key, "must not contain a newline, carriage return or NUL byte", value, True, source))
    elif isinstance(value, Mapping):
        for sub_key, sub in value.items():
            sub_path = f"{key}.{sub_key}" if key else str(sub_key)
            if isinstance(sub_key, str) and any(ch in sub_key for ch in "\n\r\x00"):
                found.append(Problem(sub_path, "a key must not contain a newline, carriage return or NUL byte", sub_key, True, source))
            found += _unsafe_strings(sub, sub_path, source)
    elif isinstance(value, (list, tuple)):
        for index, sub in enumerate(value):
            found += _unsafe_strings(sub, f"{key}[{index}]", source)
    return found


def _pydantic_problems(exc: ValidationError, model: type[BaseModel], source: str | None, prefix: str = "") -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        # Unions report one error per branch: keep the path to the field, not the branch name.
        loc = [part for part in loc if not _is_type_branch(part)]
        key = ".".join(([prefix] if prefix else []) + loc)
        kind = err["type"]
        if kind == "extra_forbidden":
            valid = _field_names(model, loc[:-1])
            guess = difflib.get_close_matches(loc[-1], valid, n=1, cutoff=0.6)
            hint = f"; did you mean {guess[0]!r}?" if guess else f"; valid keys: {', '.join(valid)}"
            problems.append(Problem(key, "unknown key" + hint, source=source))
            continue
        message = err["msg"].removeprefix("Value error, ")
        if kind == "literal_error" and loc and loc[-1] == "distributed_backend":
            message = "unknown distributed backend; valid values: null, " + ", ".join(repr(b) for b in DISTRIBUTED_BACKENDS)
        if kind == "missing":
            message = "is required"
            problems.append(Problem(key, message, source=source))
            continue
        problems.append(Problem(key, message, err.get("input"), True, source))
    return problems


def _is_type_branch(part: str) -> bool:
    return part in {"str", "int", "float", "bool", "list[union[str,int,float,bool]]"} or part.startswith(
        ("list[", "dict[", "function-", "literal[", "union[")
    )


def _field_names(model: type[BaseModel], loc: list[str]) -> list[str]:
    if not loc:
        return list(model.model_fields)
    if loc == ["compute_target"]:
        return list(SlurmOptions.model_fields)
    return []


def _check_semantics(spec: EstimatorSpec, base_dir: Path, source: str | None) -> tuple[EstimatorSpec, list[Problem]]:
    problems: list[Problem] = []
    src = Path(spec.source_directory).expanduser()
    src = src if src.is_absolute() else base_dir / src
    src = src.resolve()
    if not src.is_dir():
        problems.append(Problem("source_directory", f"directory not found: {src}", spec.source_directory, True, source))
    else:
        problems += _check_entry_script(spec.entry_script, src, source)
    if isinstance(spec.compute_target, dict):
        problems += check_slurm_options(spec.compute_target, "compute_target", source)
    elif isinstance(spec.compute_target, str) and not NAME_RE.match(spec.compute_target):
        problems.append(Problem("compute_target", "expected a target name (letters, digits, '.', '_', '-') or a mapping of Slurm options", spec.compute_target, True, source))
    problems += _not_supported_yet(spec, source)
    return spec.model_copy(update={"source_directory": str(src)}), problems


def check_slurm_options(options: Mapping[str, Any], prefix: str, source: str | None) -> list[Problem]:
    """Validate a mapping of Slurm options (inline compute_target or a targets-file entry)."""
    try:
        SlurmOptions.model_validate(dict(options))
    except ValidationError as exc:
        return _pydantic_problems(exc, SlurmOptions, source, prefix)
    return []


def _check_entry_script(entry: str, src: Path, source: str | None) -> list[Problem]:
    path = Path(entry)
    if path.is_absolute():
        return [Problem("entry_script", "must be a path relative to source_directory", entry, True, source)]
    full = (src / path).resolve()
    if src != full and src not in full.parents:
        return [Problem("entry_script", f"must stay inside source_directory ({src})", entry, True, source)]
    if not full.is_file():
        return [Problem("entry_script", f"file not found in source_directory ({src})", entry, True, source)]
    return []


def _not_supported_yet(spec: EstimatorSpec, source: str | None) -> list[Problem]:
    """Features that later releases add are refused clearly, never silently ignored."""
    problems = []
    if spec.distributed_backend is not None:
        problems.append(Problem("distributed_backend", "distributed training is not supported yet in this version of hpc_tf; use null (single process)", spec.distributed_backend, True, source))
    elif spec.node_count > 1 or spec.process_count_per_node > 1:
        key = "node_count" if spec.node_count > 1 else "process_count_per_node"
        problems.append(Problem(key, "more than one process needs a distributed_backend ('mpi', 'ps' or 'multiworker'); without one every process would run the same training", getattr(spec, key), True, source))
    for key in ("conda_packages", "pip_packages"):
        if getattr(spec, key):
            problems.append(Problem(key, "installing packages is not supported yet; install them in the Python environment you submit from (it is the one the job uses)", getattr(spec, key), True, source))
    return problems


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen, out = set(), []
    for p in problems:
        marker = (p.key, p.message)
        if marker not in seen:
            seen.add(marker)
            out.append(p)
    return out
