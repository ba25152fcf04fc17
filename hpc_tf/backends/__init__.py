"""Backends: the only modules that start jobs and ask a scheduler about them."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Mapping

from ..errors import UsageError
from .base import Backend, JobState

BACKEND_NAMES = ("auto", "slurm", "local")
SLURM_CONF_PATHS = ("/etc/slurm/slurm.conf", "/run/slurm/conf/slurm.conf")


def package_root() -> str:
    """The folder holding this hpc_tf when a job's interpreter would not find it by itself (a source
    checkout), or "" when hpc_tf is installed in the interpreter's site-packages."""
    import sysconfig
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    installed = {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")}
    return "" if root in installed else str(root)


def slurm_answers(env: Mapping[str, str] | None = None, timeout: float = 5.0) -> tuple[bool, str]:
    """Whether a Slurm cluster answers here (sbatch on PATH and `scontrol ping` succeeds), and why not."""
    if shutil.which("sbatch") is None or shutil.which("scontrol") is None:
        return False, "sbatch/scontrol not found on PATH"
    conf = (env or os.environ).get("SLURM_CONF")
    if not conf and not any(os.path.isfile(p) for p in SLURM_CONF_PATHS):
        # Without a config file Slurm clients fall back to DNS SRV look-ups; don't trigger those.
        return False, "no Slurm config (SLURM_CONF unset and no " + " or ".join(SLURM_CONF_PATHS) + ")"
    try:
        proc = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return False, f"`scontrol ping` did not answer within {timeout:.0f} s"
    if proc.returncode != 0 or "UP" not in proc.stdout:
        said = (proc.stdout + proc.stderr).strip().splitlines()
        return False, "`scontrol ping`: " + (said[-1] if said else f"exit status {proc.returncode}")
    return True, "a Slurm controller answered `scontrol ping`"


def choose_backend(requested: str, target_backend: str) -> tuple[str, str]:
    """Pick the backend: an explicit request wins, then the target's; `auto` probes Slurm."""
    if requested not in BACKEND_NAMES:
        raise UsageError(f"--backend: unknown backend {requested!r}; valid: {', '.join(BACKEND_NAMES)}")
    choice = requested if requested != "auto" else target_backend
    if choice == "auto":
        ok, why = slurm_answers()
        return ("slurm", f"auto: {why}") if ok else ("local", f"auto: no Slurm cluster here ({why})")
    if choice == "slurm":
        ok, why = slurm_answers()
        if not ok:
            raise UsageError(f"backend 'slurm' was asked for but no Slurm cluster answers: {why}. Use --backend local to run on this machine")
    return choice, "requested" if requested != "auto" else "compute_target"


def get_backend(name: str) -> Backend:
    if name == "slurm":
        from .slurm import SlurmBackend

        return SlurmBackend()
    if name == "local":
        from .local import LocalBackend

        return LocalBackend()
    raise UsageError(f"unknown backend {name!r}; valid: slurm, local")


__all__ = ["Backend", "JobState", "BACKEND_NAMES", "choose_backend", "get_backend", "package_root", "slurm_answers"]
