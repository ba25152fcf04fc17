"""Backends: the only modules that start jobs and ask a scheduler about them."""

from __future__ import annotations

from ..errors import UsageError
from ..settings import Settings
from .base import Backend

BACKEND_NAMES = ("auto", "slurm", "local")


def choose_backend(requested: str, target_backend: str, settings: Settings, probe: bool = True) -> tuple[str, str]:
    """Pick the backend: an explicit request wins, then the target's; only `auto` asks a controller
    (`scontrol ping`), to decide. Without `probe` (a dry run) `auto` means Slurm when it is installed."""
    from .probe import slurm_answers, slurm_installed

    if requested not in BACKEND_NAMES:
        raise UsageError(f"--backend: unknown backend {requested!r}; valid: {', '.join(BACKEND_NAMES)}")
    choice = requested if requested != "auto" else target_backend
    if choice == "auto":
        if not probe:
            ok, why = slurm_installed()
            return ("slurm", f"auto, not probed: {why}") if ok else ("local", f"auto: {why}")
        ok, why = slurm_answers(settings.scheduler_timeout)
        return ("slurm", f"auto: {why}") if ok else ("local", f"auto: no Slurm cluster here ({why})")
    if choice == "slurm" and probe:  # asked for: sbatch itself will say if the controller does not answer
        ok, why = slurm_installed()
        if not ok:
            raise UsageError(
                f"backend 'slurm' was asked for but Slurm is not usable here: {why}. "
                "Use --backend local to run on this machine"
            )
    return choice, "requested" if requested != "auto" else "compute_target"


def get_backend(name: str, settings: Settings) -> Backend:
    if name == "slurm":
        from .slurm import SlurmBackend

        return SlurmBackend(settings)
    if name == "local":
        from .local import LocalBackend

        return LocalBackend()
    raise UsageError(f"unknown backend {name!r}; valid: slurm, local")


__all__ = ["Backend", "BACKEND_NAMES", "choose_backend", "get_backend"]
