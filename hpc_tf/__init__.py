"""hpc_tf: describe a TensorFlow training job once, run it on Slurm or on this machine.

    from hpc_tf import TensorFlow, Experiment
    run = Experiment("digits").submit(TensorFlow(source_directory="./src", entry_script="train.py"))
    run.wait_for_completion(show_output=True)

Names are imported lazily so that the in-job runtime and `python -m hpc_tf render` stay fast. The
rule for lazy imports everywhere: only heavy third-party modules (submitit, jinja2, yaml, filelock,
matplotlib, tensorflow) and modules a command may not need are imported inside functions.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__

__all__ = ["TensorFlow", "Experiment", "Run", "SweepRun", "log", "EarlyTermination", "__version__"]


def log(name: str, value: Any, step: int | None = None) -> None:
    """Record a metric of the current run (inside an hpc_tf job); see hpc_tf.metrics."""
    from .metrics import log as _log

    _log(name, value, step)


def __getattr__(name: str) -> Any:
    if name in ("TensorFlow", "Experiment"):
        from . import api

        return getattr(api, name)
    if name == "Run":
        from .runs.follow import Run

        return Run
    if name == "SweepRun":
        from .sweeps.run import SweepRun

        return SweepRun
    if name == "EarlyTermination":
        from .metrics import EarlyTermination

        return EarlyTermination
    raise AttributeError(f"module 'hpc_tf' has no attribute {name!r}")
