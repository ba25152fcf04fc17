"""hpc_tf: describe a TensorFlow training job once, run it on Slurm or on this machine.

    from hpc_tf import TensorFlow, Experiment
    run = Experiment("digits").submit(TensorFlow(source_directory="./src", entry_script="train.py"))
    run.wait_for_completion(show_output=True)

Names are imported lazily so that the in-job runtime and `python -m hpc_tf render` stay fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["TensorFlow", "Experiment", "Run", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("TensorFlow", "Experiment", "Run"):
        from . import experiment

        return getattr(experiment, name)
    raise AttributeError(f"module 'hpc_tf' has no attribute {name!r}")
