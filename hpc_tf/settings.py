"""hpc_tf's settings from the environment (`HPC_TF_*`, XDG folders), read once into one frozen object and
passed down: nothing below the CLI and the API constructors reads `os.environ` for a setting.

| variable | meaning | default |
|---|---|---|
| HPC_TF_RUNS_DIR | where run directories go | ./runs |
| HPC_TF_TARGETS | named compute target files, ':'-separated, searched first | none |
| XDG_CONFIG_HOME | then `$XDG_CONFIG_HOME/hpc_tf/targets.yaml` | ~/.config |
| XDG_CACHE_HOME | compiled templates in `$XDG_CACHE_HOME/hpc_tf/templates` | ~/.cache |
| HPC_TF_ENV_CACHE | job environments | $XDG_CACHE_HOME/hpc_tf/envs |
| HPC_TF_TEMPLATE_DIR | a site's job script templates, looked up before the shipped ones | none |
| HPC_TF_SNAPSHOT_MAX_MB | largest source_directory snapshot | 300 |
| HPC_TF_ENV_TOOL | auto, uv or pip for pip environments | auto |
| HPC_TF_SLURM_ACCOUNTING | 1/0: Slurm accounting is on/off (else learned from the first sacct) | learned |
| HPC_TF_SCHEDULER_TIMEOUT | seconds one scheduler query may take before it counts as "not answering" | 5 |
| HPC_TF_TF_CONFIG_ENV_MAX | longest `TF_CONFIG=...` (bytes with its NUL) put in the environment, else a file | 131072 |
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping

import msgspec

from .errors import UsageError

DEFAULT_RUNS_DIR = "runs"
DEFAULT_SNAPSHOT_MAX_MB = 300.0
DEFAULT_SCHEDULER_TIMEOUT = 5.0
# Linux's MAX_ARG_STRLEN (core.envsize): the longest environment string a program can be started with
MAX_ENV_STRING = 131072
ENV_TOOLS = ("auto", "uv", "pip")


class Settings(msgspec.Struct, frozen=True):
    runs_dir: Path
    target_files: tuple[Path, ...]
    cache_dir: Path
    env_cache: Path
    template_dir: str | None = None
    snapshot_max_mb: float = DEFAULT_SNAPSHOT_MAX_MB
    env_tool: str = "auto"
    slurm_accounting: bool | None = None
    scheduler_timeout: float = DEFAULT_SCHEDULER_TIMEOUT
    tf_config_env_max: int = MAX_ENV_STRING  # recorded in job.json: the tasks read no setting themselves

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, runs_dir: str | Path | None = None) -> "Settings":
        """Settings from `env` (default: os.environ); a bad value is a UsageError naming the variable."""
        env = os.environ if env is None else env
        home = Path(env.get("HOME") or "~").expanduser()
        cache = Path(env.get("XDG_CACHE_HOME") or home / ".cache").expanduser() / "hpc_tf"
        config_home = Path(env.get("XDG_CONFIG_HOME") or home / ".config").expanduser()
        files = [Path(p).expanduser() for p in env.get("HPC_TF_TARGETS", "").split(os.pathsep) if p]
        template_dir = env.get("HPC_TF_TEMPLATE_DIR") or None
        if template_dir and not Path(template_dir).is_dir():
            raise UsageError(f"HPC_TF_TEMPLATE_DIR: not a directory: {template_dir!r}")
        return cls(
            runs_dir=Path(runs_dir or env.get("HPC_TF_RUNS_DIR") or DEFAULT_RUNS_DIR),
            target_files=(*files, config_home / "hpc_tf" / "targets.yaml"),
            cache_dir=cache,
            env_cache=Path(env.get("HPC_TF_ENV_CACHE") or cache / "envs").expanduser().absolute(),
            template_dir=template_dir,
            snapshot_max_mb=_number(env, "HPC_TF_SNAPSHOT_MAX_MB", DEFAULT_SNAPSHOT_MAX_MB, "a size in MB, > 0"),
            env_tool=_choice(env, "HPC_TF_ENV_TOOL", ENV_TOOLS),
            slurm_accounting={"1": True, "0": False}.get(_choice(env, "HPC_TF_SLURM_ACCOUNTING", ("", "0", "1"))),
            scheduler_timeout=_number(env, "HPC_TF_SCHEDULER_TIMEOUT", DEFAULT_SCHEDULER_TIMEOUT, "seconds, > 0"),
            tf_config_env_max=_bytes(env, "HPC_TF_TF_CONFIG_ENV_MAX", MAX_ENV_STRING),
        )

    @property
    def template_cache(self) -> Path:
        return self.cache_dir / "templates"


def _number(env: Mapping[str, str], name: str, default: float, allowed: str) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0 or value > 1e9:
        raise UsageError(f"{name}: {text!r} is not valid; expected {allowed}")
    return value


def _bytes(env: Mapping[str, str], name: str, high: int) -> int:
    """A byte count from 0 to `high` (the default)."""
    text = env.get(name, "").strip()
    if not text:
        return high
    if not text.isdigit() or not text.isascii() or int(text) > high:
        raise UsageError(f"{name}: {text!r} is not valid; expected a number of bytes from 0 to {high}")
    return int(text)


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    text = env.get(name, "").strip()
    if text and text not in allowed:
        raise UsageError(f"{name}: {text!r} is not valid; expected one of {', '.join(a for a in allowed if a)}")
    return text or allowed[0]
