"""What `render` and `validate` of a plain config load (issue 18, item 9): no sweep, role, requeue or in-job code.
Each is a fresh interpreter with `-X importtime`, so what a user's process imports is what is checked.
`bench/bench_modules.py` prints the whole list, for a before/after comparison with another checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Feature code a plain config has no use for. core.components is not here: one allocation is a job of one
# component (the base model), and core.slurm_options is every job's translation of its options.
NOT_FOR_A_PLAIN_CONFIG = (
    "hpc_tf.sweeps",
    "hpc_tf.hyperdrive",
    "hpc_tf.core.role_checks",
    "hpc_tf.core.requeue",
    "hpc_tf.job",
    "hpc_tf.backends.slurm",
    "hpc_tf.keras",
    "hpc_tf._keras_legacy",
    "submitit",
    "optuna",
    "tensorflow",
)


def imported(*args: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "hpc_tf", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("import time:") and "|" in line]
    return [line.rsplit("|", 1)[-1].strip() for line in lines[1:]]


@pytest.mark.parametrize(
    "args",
    [
        ("render", "configs/digits.yaml", "--backend", "slurm"),
        ("render", "configs/digits.yaml", "--backend", "local"),
        ("validate", "configs/digits.yaml"),
    ],
)
def test_a_plain_config_loads_no_feature_code_it_does_not_use(args: tuple[str, ...]) -> None:
    names = imported(*args)
    assert "hpc_tf.runs" in names or args[0] == "validate"
    unwanted = [n for n in names if any(n == m or n.startswith(m + ".") for m in NOT_FOR_A_PLAIN_CONFIG)]
    assert unwanted == [], f"{' '.join(args)} imported {unwanted}"


def test_a_config_with_roles_loads_the_role_checks() -> None:
    """The other side: the lazy import is taken when the config has roles (so the list above means something)."""
    names = imported("render", "configs/parameter-server-hetjob.yaml", "--backend", "slurm")
    assert "hpc_tf.core.role_checks" in names and "hpc_tf.sweeps" not in names


def test_a_sweep_config_loads_the_sweep_package() -> None:
    names = imported("render", "configs/digits-sweep.yaml", "--backend", "slurm")
    assert "hpc_tf.sweeps.submit" in names and "optuna" not in names  # random sampling: no Optuna either
