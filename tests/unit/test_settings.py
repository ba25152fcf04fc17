"""Settings are read once from the environment; a bad value names the variable, the value and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpc_tf.core.envsize import MAX_ARG_STRLEN
from hpc_tf.errors import UsageError
from hpc_tf.settings import Settings


def test_defaults_follow_xdg_and_home() -> None:
    s = Settings.from_env({"HOME": "/home/u"})
    assert s.runs_dir == Path("runs")
    assert s.target_files == (Path("/home/u/.config/hpc_tf/targets.yaml"),)
    assert s.template_cache == Path("/home/u/.cache/hpc_tf/templates")
    assert s.env_cache == Path("/home/u/.cache/hpc_tf/envs")
    assert (s.snapshot_max_mb, s.env_tool, s.slurm_accounting, s.scheduler_timeout) == (300.0, "auto", None, 5.0)
    assert s.tf_config_env_max == MAX_ARG_STRLEN == 131072  # the kernel's limit (settings may not import core)


def test_variables_and_explicit_runs_dir() -> None:
    env = {
        "HOME": "/h",
        "XDG_CACHE_HOME": "/c",
        "XDG_CONFIG_HOME": "/k",
        "HPC_TF_TARGETS": "/a.yaml:/b.yaml",
        "HPC_TF_RUNS_DIR": "/r",
        "HPC_TF_ENV_CACHE": "/e",
        "HPC_TF_SLURM_ACCOUNTING": "0",
        "HPC_TF_SCHEDULER_TIMEOUT": "2.5",
        "HPC_TF_ENV_TOOL": "pip",
        "HPC_TF_SNAPSHOT_MAX_MB": "10",
        "HPC_TF_TF_CONFIG_ENV_MAX": "0",
    }
    s = Settings.from_env(env)
    assert s.target_files == (Path("/a.yaml"), Path("/b.yaml"), Path("/k/hpc_tf/targets.yaml"))
    assert (s.runs_dir, s.env_cache, s.template_cache) == (Path("/r"), Path("/e"), Path("/c/hpc_tf/templates"))
    assert (s.slurm_accounting, s.scheduler_timeout, s.env_tool, s.snapshot_max_mb) == (False, 2.5, "pip", 10.0)
    assert s.tf_config_env_max == 0  # TF_CONFIG always through its file
    assert Settings.from_env(env, runs_dir="/x").runs_dir == Path("/x")


@pytest.mark.parametrize(
    "name, value",
    [
        ("HPC_TF_SNAPSHOT_MAX_MB", "-1"),
        ("HPC_TF_SNAPSHOT_MAX_MB", "lots"),
        ("HPC_TF_SNAPSHOT_MAX_MB", "nan"),
        ("HPC_TF_SNAPSHOT_MAX_MB", "1e400"),
        ("HPC_TF_SCHEDULER_TIMEOUT", "0"),
        ("HPC_TF_ENV_TOOL", "conda"),
        ("HPC_TF_SLURM_ACCOUNTING", "yes"),
        ("HPC_TF_TEMPLATE_DIR", "/nonexistent/templates"),
        ("HPC_TF_TF_CONFIG_ENV_MAX", "131073"),  # over Linux's limit: the task could not start
        ("HPC_TF_TF_CONFIG_ENV_MAX", "-1"),
        ("HPC_TF_TF_CONFIG_ENV_MAX", "64k"),
        ("HPC_TF_TF_CONFIG_ENV_MAX", "١٢"),  # Arabic-Indic digits: isdigit() says yes, int() too
    ],
)
def test_a_bad_setting_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(UsageError) as info:
        Settings.from_env({"HOME": "/h", name: value})
    assert name in str(info.value) and repr(value) in str(info.value) and info.value.exit_status == 2
