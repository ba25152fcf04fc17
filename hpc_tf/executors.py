"""A configured submitit executor for the user's own Python functions (the "programmatic submitit executor").

It is plain submitit: its own script generator and in-job runner, with the estimator's
compute target translated to submitit parameters.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .spec import EstimatorSpec
from .plan import gpus_per_node
from .targets import Target

# compute_target key → submitit SlurmExecutor parameter (same Slurm option underneath)
_DIRECT = ("partition", "account", "qos", "cpus_per_task", "mem", "constraint", "exclude")


def slurm_parameters(spec: EstimatorSpec, target: Target) -> dict[str, Any]:
    """submitit `update_parameters` keywords for a Slurm executor (pure)."""
    opts = target.options
    params: dict[str, Any] = {"nodes": spec.node_count, "ntasks_per_node": spec.process_count_per_node,
                              "job_name": spec.experiment}
    for name in _DIRECT:
        value = getattr(opts, name)
        if value is not None:
            params[name] = value
    if spec.max_run_duration_seconds is not None:
        params["time"] = max(1, math.ceil(spec.max_run_duration_seconds / 60))
    elif opts.time is not None:
        params["time"] = opts.time
    if spec.use_gpu:
        params["gpus_per_node"] = gpus_per_node(spec, target)
    extra = {k.replace("-", "_"): v for k, v in opts.additional_parameters.items() if v is not False}
    if opts.reservation is not None:
        extra["reservation"] = opts.reservation
    if extra:
        params["additional_parameters"] = extra
    return params


def make_executor(spec: EstimatorSpec, target: Target, backend: str, folder: Path) -> Any:
    import submitit

    if backend == "slurm":
        executor = submitit.SlurmExecutor(folder=folder)
        executor.update_parameters(**slurm_parameters(spec, target))
    else:
        executor = submitit.LocalExecutor(folder=folder)
        params: dict[str, Any] = {"nodes": 1, "tasks_per_node": 1}
        if spec.max_run_duration_seconds is not None:
            params["timeout_min"] = max(1, math.ceil(spec.max_run_duration_seconds / 60))
        executor.update_parameters(**params)
    return executor
