"""Compute targets: turning `compute_target` (absent, a name, or inline Slurm options) into a backend and options.

Named targets live in YAML files searched in this order (first file that defines the name wins):
  1. every path in `HPC_TF_TARGETS` (separated by ':'),
  2. `$XDG_CONFIG_HOME/hpc_tf/targets.yaml` (default `~/.config/hpc_tf/targets.yaml`).
A targets file maps names to Slurm options, e.g. `gpu: {partition: gpu, gpus_per_node: 4}`.
Built-in names: `local` (this machine) and `auto` (Slurm if a cluster answers, else local).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Sequence

import msgspec

from ..core.spec import EstimatorSpec, SlurmOptions
from ..core.validation import check_gpus, check_time_limit, convert
from ..errors import ConfigError, Problem
from .loading import load_yaml

BackendName = Literal["auto", "slurm", "local"]
BUILTIN = ("auto", "local")


class Target(msgspec.Struct, frozen=True):
    """A resolved compute target: which backend it asks for and the Slurm options to use there."""

    name: str
    backend: BackendName
    options: SlurmOptions = msgspec.field(default_factory=SlurmOptions)
    source: str = "config"


def resolve_target(spec: EstimatorSpec, paths: Sequence[Path]) -> Target:
    """Resolve spec.compute_target into a Target and check it fits the job (GPUs per process; with roles, that it
    holds only the whole job's options and the roles' defaults)."""
    target = _resolve(spec, paths)
    source = None if target.source == "config" else target.source
    if spec.roles:  # the rules of roles are loaded only for a config that has them
        from ..core.role_checks import check_target

        problems = check_target(spec, target.options, source)
    else:
        problems = check_gpus(spec, target.options.gpus_per_node, source)
        if target.source != "config":  # an inline compute_target.time is checked with the rest of the config
            problems += check_time_limit(spec, target.options.time, source)
    if problems:
        raise ConfigError(problems)
    return target


def _resolve(spec: EstimatorSpec, paths: Sequence[Path]) -> Target:
    """Resolve spec.compute_target into a Target; an unknown name lists what is known."""
    ct = spec.compute_target
    if ct is None or ct == "auto":
        return Target("auto", "auto")
    if ct == "local":
        return Target("local", "local")
    if isinstance(ct, dict):
        options, problems = convert(SlurmOptions, ct, None, "compute_target")
        if options is None:
            raise ConfigError(problems)
        return Target("inline", "slurm", options)
    known: list[str] = []
    for path in paths:
        if not path.is_file():
            continue
        entries = load_yaml(path)
        if ct in entries:
            return _target_from_file(ct, entries[ct], path)
        known += [str(k) for k in entries]
    where = ", ".join(str(p) for p in paths)
    names = sorted(set(known) | set(BUILTIN))
    raise ConfigError(
        [
            Problem(
                "compute_target",
                f"unknown target name; known names: {', '.join(names)} "
                f"(searched {where}; set HPC_TF_TARGETS to add a file)",
                ct,
            )
        ]
    )


def _target_from_file(name: str, entry: Any, path: Path) -> Target:
    if entry is None:
        entry = {}
    if not isinstance(entry, dict):
        raise ConfigError([Problem(name, "expected a mapping of Slurm options", entry, source=str(path))])
    options, problems = convert(SlurmOptions, entry, str(path), name)
    if options is None:
        raise ConfigError(problems)
    return Target(name, "slurm", options, str(path))
