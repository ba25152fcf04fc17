"""The estimator config: its schema, loading from YAML or keywords, and every validation rule.

This is the only module that knows the config's shape. It returns a fully validated
`EstimatorSpec` or raises one `ConfigError` that lists every problem found.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Annotated, Any, Callable, Literal, Mapping, Sequence, TypeVar, Union

import msgspec
from msgspec import Meta

from .errors import ConfigError, Problem

Scalar = Union[str, int, float, bool]
ParamValue = Union[Scalar, None, list[Scalar]]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Slurm --time forms: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, or UNLIMITED.
SLURM_TIME_RE = re.compile(r"^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+(:\d{1,2}(:\d{1,2})?)?|UNLIMITED|INFINITE)$")
SLURM_MEM_RE = re.compile(r"^\d+[KMGT]?B?$", re.I)
SBATCH_OPTION_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
DISTRIBUTED_BACKENDS = ("mpi", "ps", "multiworker")
# Options hpc_tf sets itself; a target that sets them through additional_parameters would
# silently change the job's layout or break the run directory.
RESERVED_SBATCH_OPTIONS = frozenset(
    {"nodes", "ntasks", "ntasks-per-node", "output", "error", "chdir", "job-name", "array", "wrap", "parsable"}
)


class SlurmOptions(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Slurm options of a compute target, with Slurm's own option names in snake_case."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: str | Annotated[int, Meta(ge=1)] | None = None
    cpus_per_task: Annotated[int, Meta(ge=1, le=4096)] | None = None
    mem: str | None = None
    gpus_per_node: Annotated[int, Meta(ge=0, le=64)] | None = None
    constraint: str | None = None
    exclude: str | None = None
    reservation: str | None = None
    additional_parameters: dict[str, Any] = {}


class EstimatorSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A TensorFlow training job, with the Azure ML estimator's parameter names and defaults."""

    source_directory: str
    entry_script: str
    experiment: str = "default"
    script_params: dict[str, Any] = {}
    compute_target: Union[str, dict[str, Any], None] = None
    conda_packages: list[str] = []
    pip_packages: list[str] = []
    pip_requirements_file: str | None = None
    conda_dependencies_file: str | None = None
    # hpc_tf's own environment keys (see README "Environments")
    modules: list[str] = []
    setup: list[str] = []
    python: str | None = None
    inherit_base_packages: bool = False
    environment_build: Literal["submit", "job"] = "submit"
    pip_find_links: list[str] = []
    pip_no_index: bool = False
    # metrics scraped from rank 0's stdout: name → regular expression with one group (the value)
    metric_patterns: dict[str, str] = {}
    use_gpu: bool = False
    node_count: Annotated[int, Meta(ge=1, le=4096)] = 1
    process_count_per_node: Annotated[int, Meta(ge=1, le=256)] = 1
    distributed_backend: Literal["mpi", "ps", "multiworker"] | None = None
    worker_count: Annotated[int, Meta(ge=1, le=4096)] = 1
    parameter_server_count: Annotated[int, Meta(ge=0, le=1024)] = 1
    environment_variables: dict[str, Any] = {}
    max_run_duration_seconds: Annotated[int, Meta(ge=1)] | None = None
    # hpc_tf's own keys for distributed training (the estimator has no equivalent)
    launcher: Literal["srun", "mpirun"] = "srun"
    mpi_plugin: str = "pmix"
    launcher_args: list[str] = []
    ps_mode: Literal["managed", "script"] = "managed"
    evaluator: bool = False

    @property
    def ntasks(self) -> int:
        """How many tasks the job starts: one per role for 'ps', one per slot otherwise."""
        if self.distributed_backend == "ps":
            return 1 + self.parameter_server_count + self.worker_count + int(self.evaluator)
        return self.node_count * self.process_count_per_node

    @property
    def environment_kind(self) -> str | None:
        """'pip' or 'conda' when the job asks for packages, None when it runs the base interpreter."""
        if self.conda_packages or self.conda_dependencies_file:
            return "conda"
        if self.pip_packages or self.pip_requirements_file:
            return "pip"
        return None

    @property
    def roles_text(self) -> str:
        text = f"1 chief + {self.parameter_server_count} ps + {self.worker_count} workers"
        return text + (" + 1 evaluator" if self.evaluator else "")

    @property
    def slots(self) -> int:
        return self.node_count * self.process_count_per_node


# ----------------------------------------------------------------------------- field checks
# Each returns (sub-key, message) for the first bad entry, or None. They run after the type check.


def _check_entries(what: str, scalars: tuple[type, ...], allow_none: bool, allow_list: bool) -> Callable[[Any], tuple[str, str] | None]:
    """One clear message per bad entry of a mapping, naming the entry."""

    def check(value: Mapping[str, Any]) -> tuple[str, str] | None:
        for key, item in value.items():
            ok = (item is None and allow_none) or isinstance(item, scalars) or (
                allow_list and isinstance(item, list) and all(isinstance(i, scalars) for i in item))
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
        if groups != 1:
            return name, f"needs exactly one group (the value), has {groups}"
    return None


def _env_names(value: Mapping[str, Any]) -> tuple[str, str] | None:
    for name in value:
        if not ENV_NAME_RE.match(name):
            return name, "invalid environment variable name: expected letters, digits and '_', not starting with a digit"
    return _check_entries("a string, number or boolean", (str, int, float, bool), False, False)(value)


def _sbatch_options(value: Mapping[str, Any]) -> tuple[str, str] | None:
    for name in value:
        if not SBATCH_OPTION_RE.match(name):
            return name, "not a long sbatch option name (letters, digits, '_' or '-')"
        if name.replace("_", "-") in RESERVED_SBATCH_OPTIONS:
            return name, "set by hpc_tf itself; it cannot be overridden here"
    return _check_entries("a string, integer, true/false or null (a bare flag)", (str, int, bool), True, False)(value)


CHECKS: dict[type, dict[str, Callable[[Any], tuple[str, str] | None]]] = {
    EstimatorSpec: {
        "experiment": _pattern(NAME_RE, "1-100 characters from letters, digits, '.', '_' and '-', not starting with '.', '_' or '-'"),
        "script_params": _check_entries("a string, number, boolean, null (a bare flag) or a list of strings/numbers",
                                        (str, int, float, bool), True, True),
        "environment_variables": _env_names,
        "pip_packages": lambda v: _each(v, _pep508),
        "modules": lambda v: _each(v, lambda m: None if MODULE_RE.match(m) else "expected a module name such as 'cuda/12.2' (letters, digits, '.', '_', '+', '-', '/')"),
        "setup": lambda v: _each(v, lambda line: None if line.strip() else "an empty setup line"),
        "conda_packages": lambda v: _each(v, lambda p: None if CONDA_SPEC_RE.match(p) else "expected a conda package spec such as 'numpy' or 'numpy>=1.26'"),
        "metric_patterns": _regexes,
        "mpi_plugin": _pattern(re.compile(r"^[a-z0-9_]+$"), "an srun --mpi plugin name such as 'pmix' (see `srun --mpi=list`)"),
        "compute_target": lambda v: None if not isinstance(v, str) or NAME_RE.match(v) else (
            "", "expected a target name (letters, digits, '.', '_', '-') or a mapping of Slurm options"),
    },
    SlurmOptions: {
        "time": lambda v: None if not isinstance(v, str) or SLURM_TIME_RE.match(v) else (
            "", "expected minutes or a Slurm time such as '30', '1:00:00' or '2-00:00:00'"),
        "mem": _pattern(SLURM_MEM_RE, "a Slurm memory size such as '4000', '16G' or '500M'"),
        "additional_parameters": _sbatch_options,
    },
}

MODULE_RE = re.compile(r"^[A-Za-z0-9._+/-]+$")
CONDA_SPEC_RE = re.compile(r"^[A-Za-z0-9_.:/-]+(\[[^\]]*\])?\s*([<>=!~ ,.*0-9A-Za-z_+-]*)$")


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


S = TypeVar("S", EstimatorSpec, SlurmOptions)
_TYPE_WORDS = {"int": "an integer", "str": "a string", "bool": "true or false", "float": "a number",
               "array": "a list", "object": "a mapping", "null": "null"}


def convert(cls: type[S], data: Mapping[str, Any], source: str | None, prefix: str = "") -> tuple[S | None, list[Problem]]:
    """Type-check a mapping field by field into `cls`, collecting every problem (msgspec stops at the first)."""
    problems: list[Problem] = []
    fields = {f.name: f for f in msgspec.structs.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            import difflib

            guess = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.6)
            hint = f"; did you mean {guess[0]!r}?" if guess else f"; valid keys: {', '.join(fields)}"
            problems.append(Problem(dotted, "unknown key" + hint, source=source))
            continue
        try:
            values[key] = msgspec.convert(value, type=fields[key].type)
        except msgspec.ValidationError as exc:
            problems.append(Problem(dotted, _message(key, str(exc)), value, True, source))
            continue
        bad = CHECKS.get(cls, {}).get(key, lambda _: None)(values[key])
        if bad:
            sub, message = bad
            shown = value.get(sub) if sub and isinstance(value, dict) else (
                value[int(sub[1:-1])] if sub.startswith("[") and isinstance(value, list) else value)
            key_text = dotted + (sub if sub.startswith("[") else f".{sub}") if sub else dotted
            problems.append(Problem(key_text, message, shown, True, source))
    for name, field in fields.items():
        if field.required and name not in data:
            problems.append(Problem(f"{prefix}.{name}" if prefix else name, "is required", source=source))
    return (None, problems) if problems else (cls(**values), [])


def _message(key: str, text: str) -> str:
    if key == "distributed_backend":
        return "unknown distributed backend; valid values: null, " + ", ".join(repr(b) for b in DISTRIBUTED_BACKENDS)
    if key == "launcher":
        return "unknown launcher; valid values: 'srun', 'mpirun'"
    if key == "environment_build":
        return "valid values: 'submit' (build before queueing, the default), 'job' (build inside the job)"
    if key == "ps_mode":
        return "unknown ps_mode; valid values: 'managed' (hpc_tf runs the ps/worker servers), 'script' (your script runs on every task)"
    text = re.sub(r" - at `\$[^`]*`$", "", text)
    text = re.sub(r", got `[^`]*`$", "", text)  # the value itself is shown after the message
    text = re.sub(r"`([a-z]+)`", lambda m: _TYPE_WORDS.get(m.group(1), m.group(1)), text)
    text = re.sub(r"`([^`]*)`", lambda m: " or ".join(_TYPE_WORDS.get(t.strip(), t.strip()) for t in m.group(1).split("|")), text)
    return text[0].lower() + text[1:]


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

    Every problem is collected (unsafe characters, schema, files, compute target, unsupported
    features) and raised together as one ConfigError, even when the schema itself failed.
    """
    problems = list(_unsafe_strings(data, "", source))
    spec, more = convert(EstimatorSpec, data, source)
    problems += more
    source_dir, more = _check_files(data, Path(base_dir), source)
    problems += more
    if isinstance(data.get("compute_target"), dict):
        problems += convert(SlurmOptions, data["compute_target"], source, "compute_target")[1]
    if spec is not None:
        problems += _check_environment(spec, data, Path(base_dir), source) + _check_layout(spec, data, source)

    if problems:
        raise ConfigError(_dedupe(problems))
    assert spec is not None and source_dir is not None
    paths = {key: str(resolve_path(getattr(spec, key), Path(base_dir))) for key in ("pip_requirements_file", "conda_dependencies_file")
             if getattr(spec, key)}
    return msgspec.structs.replace(spec, source_directory=str(source_dir), **paths)


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


def _check_files(data: Mapping[str, Any], base_dir: Path, source: str | None) -> tuple[Path | None, list[Problem]]:
    """source_directory must exist; entry_script must be a file inside it."""
    raw = data.get("source_directory")
    if not isinstance(raw, str) or not raw:
        return None, []
    src = Path(raw).expanduser()
    src = (src if src.is_absolute() else base_dir / src).resolve()
    if not src.is_dir():
        return src, [Problem("source_directory", f"directory not found: {src}", raw, True, source)]
    entry = data.get("entry_script")
    return src, (_check_entry_script(entry, src, source) if isinstance(entry, str) and entry else [])


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


ONLY_FOR = {
    "worker_count": ("ps",), "parameter_server_count": ("ps",), "ps_mode": ("ps",), "evaluator": ("ps",),
    "launcher": ("mpi",), "mpi_plugin": ("mpi",), "launcher_args": ("mpi", "ps", "multiworker"),
}


def _check_layout(spec: EstimatorSpec, given: Mapping[str, Any], source: str | None) -> list[Problem]:
    """Cross-key rules of distributed training; keys that do nothing for the chosen backend are refused."""
    problems = []
    backend = spec.distributed_backend
    for key, backends in ONLY_FOR.items():
        if key in given and backend not in backends:
            problems.append(Problem(key, f"only used with distributed_backend {' or '.join(repr(b) for b in backends)} (distributed_backend is {backend!r})", given[key], True, source))
    if backend is None and spec.slots > 1:
        key = "node_count" if spec.node_count > 1 else "process_count_per_node"
        problems.append(Problem(key, "more than one process needs a distributed_backend ('mpi', 'ps' or 'multiworker'); without one every process would run the same training", getattr(spec, key), True, source))
    if backend == "ps":
        if spec.parameter_server_count < 1:
            problems.append(Problem("parameter_server_count", "'ps' needs at least 1 parameter server", spec.parameter_server_count, True, source))
        if spec.ntasks < spec.node_count:
            problems.append(Problem("node_count", f"'ps' runs {spec.ntasks} tasks ({spec.roles_text}): {spec.node_count} nodes would leave {spec.node_count - spec.ntasks} without a task", spec.node_count, True, source))
        if spec.ntasks > spec.slots:
            problems.append(Problem("worker_count + parameter_server_count", f"'ps' needs {spec.ntasks} tasks ({spec.roles_text}) but node_count × process_count_per_node = {spec.node_count} × {spec.process_count_per_node} = {spec.slots} slots: {spec.ntasks - spec.slots} missing", None, False, source))
    if backend == "mpi" and spec.launcher == "mpirun" and spec.mpi_plugin != "pmix" and "mpi_plugin" in given:
        problems.append(Problem("mpi_plugin", "is an srun setting; launcher 'mpirun' does not use it", spec.mpi_plugin, True, source))
    for i, arg in enumerate(spec.launcher_args):
        if not arg:
            problems.append(Problem(f"launcher_args[{i}]", "an argument cannot be empty", arg, True, source))
    return problems


def check_gpus(spec: EstimatorSpec, target_gpus: int | None, source: str | None) -> list[Problem]:
    """With one GPU per process, a node must have at least as many GPUs as processes."""
    if spec.use_gpu and target_gpus is not None and target_gpus < spec.process_count_per_node:
        return [Problem("compute_target.gpus_per_node", f"{target_gpus} GPUs per node for process_count_per_node = {spec.process_count_per_node}: each process needs its own GPU", target_gpus, True, source)]
    return []


def _check_environment(spec: EstimatorSpec, given: Mapping[str, Any], base_dir: Path, source: str | None) -> list[Problem]:
    """Environment keys: one kind of package manager per job, files that exist, a base interpreter."""
    problems = []
    pip = spec.pip_packages or spec.pip_requirements_file
    conda = spec.conda_packages or spec.conda_dependencies_file
    if pip and conda:
        problems.append(Problem("pip_packages + conda_packages", "use one package manager per job: put pip packages in conda_dependencies_file's `pip:` section, or use only pip", None, False, source))
    for key in ("pip_requirements_file", "conda_dependencies_file"):
        value = getattr(spec, key)
        if value and not resolve_path(value, base_dir).is_file():
            problems.append(Problem(key, f"file not found: {resolve_path(value, base_dir)}", value, True, source))
    if spec.python and not (shutil.which(spec.python) or resolve_path(spec.python, base_dir).is_file()):
        problems.append(Problem("python", "interpreter not found (a path, or a command on PATH)", spec.python, True, source))
    for key in ("inherit_base_packages", "pip_find_links", "pip_no_index", "environment_build"):
        if key in given and not (pip or conda):
            problems.append(Problem(key, "only used with pip_packages, pip_requirements_file, conda_packages or conda_dependencies_file", getattr(spec, key), True, source))
    if spec.pip_no_index and not spec.pip_find_links:
        problems.append(Problem("pip_no_index", "with no index, pip needs a wheelhouse: set pip_find_links", True, True, source))
    return problems


def resolve_path(value: str, base_dir: Path) -> Path:
    """A path from the config: absolute, or relative to the config file's folder."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen, out = set(), []
    for p in problems:
        marker = (p.key, p.message)
        if marker not in seen:
            seen.add(marker)
            out.append(p)
    return out
