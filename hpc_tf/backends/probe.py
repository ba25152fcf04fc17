"""Is Slurm here, and does it answer? Asked by `auto` backend choice, without importing submitit."""

from __future__ import annotations

import os
import shutil
import subprocess

SLURM_CONF_PATHS = ("/etc/slurm/slurm.conf", "/run/slurm/conf/slurm.conf")


def slurm_installed() -> tuple[bool, str]:
    """Whether Slurm's clients and a config are here (no query: for dry runs)."""
    if shutil.which("sbatch") is None or shutil.which("scontrol") is None:
        return False, "sbatch/scontrol not found on PATH"
    if not os.environ.get("SLURM_CONF") and not any(os.path.isfile(p) for p in SLURM_CONF_PATHS):
        # Without a config file Slurm clients fall back to DNS SRV look-ups; don't trigger those.
        return False, "no Slurm config (SLURM_CONF unset and no " + " or ".join(SLURM_CONF_PATHS) + ")"
    return True, "Slurm's clients and config are installed"


def slurm_answers(timeout: float) -> tuple[bool, str]:
    """Whether a Slurm cluster answers here (clients installed and `scontrol ping` succeeds), and why not."""
    ok, why = slurm_installed()
    if not ok:
        return ok, why
    try:
        proc = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"`scontrol ping` did not answer within {timeout:g} s"
    if proc.returncode != 0 or "UP" not in proc.stdout:
        said = (proc.stdout + proc.stderr).strip().splitlines()
        return False, "`scontrol ping`: " + (said[-1] if said else f"exit status {proc.returncode}")
    return True, "a Slurm controller answered `scontrol ping`"
