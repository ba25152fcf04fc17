"""HyperDrive sweeps: a config's `hyperdrive:` block run as Slurm job arrays, one trial per array task.

The public face is small: `SweepRun` (follow, best, cancel, throttle), `prepare_sweep` (nothing written) and
`submit_sweep` (one transaction). Inside, the same layers as the base package: `core/` is pure (the block's
schema and parsing, draws, policies, arrays), `sweepdir` owns every path of a sweep, `submit`/`run`/`report`
are the submit side, and `trial` is in-job (an array task becomes its trial). Users' scripts import the
HyperDrive names from `hpc_tf.hyperdrive`. Names here are imported lazily: a sweep's in-job code and the
pure core never load the submit side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .run import SweepRun as SweepRun
    from .submit import prepare_sweep as prepare_sweep
    from .submit import submit_sweep as submit_sweep

__all__ = ["SweepRun", "prepare_sweep", "submit_sweep"]


def __getattr__(name: str) -> Any:
    if name == "SweepRun":
        from .run import SweepRun

        return SweepRun
    if name in ("prepare_sweep", "submit_sweep"):
        from . import submit

        return getattr(submit, name)
    raise AttributeError(f"module 'hpc_tf.sweeps' has no attribute {name!r}")
