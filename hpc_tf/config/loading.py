"""Loading a config: YAML files, `--set` overrides, the checks that look at the filesystem, and the
one `validate` that returns a fully checked `EstimatorSpec` or raises one `ConfigError` listing every problem.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import msgspec

from ..core.spec import EstimatorSpec, SlurmOptions
from ..core.validation import check_layout, convert, dedupe, unsafe_strings
from ..errors import ConfigError, Problem

if TYPE_CHECKING:  # a plain config loads no sweep or role code: they are imported when the config has them
    from ..sweeps.core.spec import SweepSpec


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a mapping (see `yamlconfig` for the rules); every problem is a ConfigError."""
    from .strict_yaml import parse, read_config_text

    path = Path(path)
    data = parse(read_config_text(path), str(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([Problem("", "expected a mapping of config keys at the top level", data, source=str(path))])
    return data


def apply_overrides(data: dict[str, Any], overrides: Sequence[str], source: str = "--set") -> dict[str, Any]:
    """Apply `KEY=VALUE` overrides (dotted keys, YAML values read as the file's are) to a copy of a raw config
    mapping. A key of more than MAX_DEPTH parts is refused: the nesting it makes would overflow the stack of
    every recursive step after it (a 1,000-part key was a RecursionError)."""
    import copy

    from .strict_yaml import MAX_DEPTH, dotted, parse_value

    data = copy.deepcopy(data)
    problems = []
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            problems.append(Problem(key or item, "expected KEY=VALUE (for example node_count=2)", item, source=source))
            continue
        parts = key.split(".")
        if len(parts) > MAX_DEPTH:
            problems.append(Problem(dotted(parts), TOO_MANY_PARTS.format(len(parts), MAX_DEPTH), source=source))
            continue
        try:
            value = parse_value(text, parts, source) if text.strip() else ""
        except ConfigError as exc:
            problems += exc.problems
            continue
        node = data
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                problems.append(
                    Problem(
                        ".".join(parts[: depth + 1]),
                        "is not a mapping, cannot set a key inside it",
                        child,
                        source=source,
                    )
                )
                break
            node = child
        else:
            node[parts[-1]] = value
    if problems:
        raise ConfigError(problems)
    return data


TOO_MANY_PARTS = "a key of {} dotted parts is nested too deeply: a --set key may have at most {} parts"


SWEEP_KEYS = ("hyperdrive", "sweep")  # the sweep block's name (HyperDrive's) and its alias


def validate_config(
    data: Mapping[str, Any], base_dir: str | Path, source: str | None = None
) -> tuple[EstimatorSpec, SweepSpec | None, str]:
    """A config that may hold a sweep (`hyperdrive:` or `sweep:`): the job's spec, the sweep's (None for
    a single run) and the block's name. Problems of both parts are reported together."""
    given = [key for key in SWEEP_KEYS if key in data]
    job = {k: v for k, v in data.items() if k not in SWEEP_KEYS}
    problems: list[Problem] = []
    if len(given) > 1:
        problems.append(
            Problem(" + ".join(given), "give the sweep once: `hyperdrive:` or its alias `sweep:`", source=source)
        )
    sweep = None
    if given:
        from ..core.role_checks import NO_SWEEP
        from ..sweeps.core.parse import parse_sweep

        sweep, found = parse_sweep(data[given[0]], given[0], source)
        problems += found
        if "roles" in data:
            problems.append(Problem(f"roles + {given[0]}", NO_SWEEP, source=source))
    try:
        spec = validate(job, base_dir, source)
    except ConfigError as exc:
        raise ConfigError(dedupe(list(exc.problems) + problems)) from None
    if problems:
        raise ConfigError(dedupe(problems))
    return spec, sweep, given[0] if given else ""


def validate(data: Mapping[str, Any], base_dir: str | Path, source: str | None = None) -> EstimatorSpec:
    """Validate a raw config mapping; return the spec with an absolute source_directory.

    Every problem is collected (unsafe characters, schema, files, compute target, unsupported
    features) and raised together as one ConfigError, even when the schema itself failed.
    """
    problems = list(unsafe_strings(data, "", source))
    spec, more = convert(EstimatorSpec, {k: v for k, v in data.items() if k != "roles"}, source)
    problems += more
    if "roles" in data:
        from ..core.role_checks import check_roles, convert_roles

        roles, more = convert_roles(data["roles"], source)
        problems += more
        if spec is not None and roles:
            spec = msgspec.structs.replace(spec, roles=roles)
    source_dir, more = _check_files(data, Path(base_dir), source)
    problems += more
    if isinstance(data.get("compute_target"), dict):
        problems += convert(SlurmOptions, data["compute_target"], source, "compute_target")[1]
    if spec is not None:
        problems += _check_environment(spec, data, Path(base_dir), source) + check_layout(spec, data, source)
        if "roles" in data:
            problems += check_roles(spec, data, source)

    if problems:
        raise ConfigError(dedupe(problems))
    assert spec is not None and source_dir is not None
    paths = {
        key: str(resolve_path(getattr(spec, key), Path(base_dir)))
        for key in ("pip_requirements_file", "conda_dependencies_file")
        if getattr(spec, key)
    }
    return msgspec.structs.replace(spec, source_directory=str(source_dir), **paths)


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> EstimatorSpec:
    """Load, override and validate a YAML config; relative paths are relative to the file."""
    return load_config(path, overrides)[0]


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> tuple[EstimatorSpec, SweepSpec | None, str]:
    """Load, override and validate a YAML config that may hold a sweep (see `validate_config`)."""
    path = Path(path)
    data = apply_overrides(load_yaml(path), overrides) if overrides else load_yaml(path)
    return validate_config(data, path.resolve().parent, str(path))


def _check_files(data: Mapping[str, Any], base_dir: Path, source: str | None) -> tuple[Path | None, list[Problem]]:
    """source_directory must exist; entry_script must be a file inside it."""
    raw, entry = data.get("source_directory"), data.get("entry_script")
    problems = [
        Problem(key, "must not be empty", "", source=source)
        for key in ("source_directory", "entry_script")
        if data.get(key) == ""
    ]
    if not isinstance(raw, str) or not raw:
        return None, problems
    try:
        src = resolve_path(raw, base_dir)
        if not src.is_dir():
            return src, [*problems, Problem("source_directory", f"directory not found: {src}", raw, source=source)]
    except UNUSABLE_PATH as exc:  # a name too long for the filesystem, an unknown ~user, ...
        return None, [*problems, Problem("source_directory", f"not a usable path: {exc}", raw, source=source)]
    if not isinstance(entry, str) or not entry:
        return src, problems
    try:
        return src, problems + _check_entry_script(entry, src, source)
    except UNUSABLE_PATH as exc:
        return src, [*problems, Problem("entry_script", f"not a usable path: {exc}", entry, source=source)]


def _check_entry_script(entry: str, src: Path, source: str | None) -> list[Problem]:
    path = Path(entry)
    if path.is_absolute():
        return [Problem("entry_script", "must be a path relative to source_directory", entry, source=source)]
    full = (src / path).resolve()
    if src != full and src not in full.parents:
        return [Problem("entry_script", f"must stay inside source_directory ({src})", entry, source=source)]
    if not full.is_file():
        return [Problem("entry_script", f"file not found in source_directory ({src})", entry, source=source)]
    if full == src:
        return [Problem("entry_script", "must name a file", entry, source=source)]
    return []


def _check_environment(
    spec: EstimatorSpec, given: Mapping[str, Any], base_dir: Path, source: str | None
) -> list[Problem]:
    """Environment keys: one kind of package manager per job, files that exist, a base interpreter."""
    problems = []
    pip = spec.pip_packages or spec.pip_requirements_file
    conda = spec.conda_packages or spec.conda_dependencies_file
    if pip and conda:
        problems.append(
            Problem(
                "pip_packages + conda_packages",
                "use one package manager per job: put pip packages in "
                "conda_dependencies_file's `pip:` section, or use only pip",
                source=source,
            )
        )
    for key in ("pip_requirements_file", "conda_dependencies_file", "python"):
        value = getattr(spec, key)
        try:
            if key == "python" and value and not (shutil.which(value) or resolve_path(value, base_dir).is_file()):
                problems.append(
                    Problem(key, "interpreter not found (a path, or a command on PATH)", value, source=source)
                )
            elif key != "python" and value and not resolve_path(value, base_dir).is_file():
                problems.append(Problem(key, f"file not found: {resolve_path(value, base_dir)}", value, source=source))
        except UNUSABLE_PATH as exc:
            problems.append(Problem(key, f"not a usable path: {exc}", value, source=source))
    for key in ("inherit_base_packages", "pip_find_links", "pip_no_index", "environment_build"):
        if key in given and not (pip or conda):
            problems.append(
                Problem(
                    key,
                    "only used with pip_packages, pip_requirements_file, conda_packages or conda_dependencies_file",
                    getattr(spec, key),
                    source=source,
                )
            )
    if spec.pip_no_index and not spec.pip_find_links:
        problems.append(
            Problem("pip_no_index", "with no index, pip needs a wheelhouse: set pip_find_links", True, source=source)
        )
    return problems


# What the filesystem and pathlib raise for a path that cannot be used at all: too long (OSError), a NUL
# byte (ValueError), not Unicode (UnicodeError, a ValueError), `~nosuchuser` (RuntimeError).
UNUSABLE_PATH = (OSError, ValueError, RuntimeError)


def resolve_path(value: str, base_dir: Path) -> Path:
    """A path from the config: absolute, or relative to the config file's folder (may raise UNUSABLE_PATH)."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()
