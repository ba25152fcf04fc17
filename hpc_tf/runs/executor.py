"""A configured submitit executor for the user's own Python functions (the "programmatic submitit executor").

It is plain submitit: its own script generator and in-job runner, with the estimator's compute
target translated by the same `core.plan.slurm_options` as the job script, so both ask Slurm for
the same thing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config.targets import Target
from ..core.plan import executor_parameters
from ..core.spec import EstimatorSpec
from ..errors import ConfigError, Problem
from .render import needs_sbatch_quoting

if TYPE_CHECKING:
    import submitit


def slurm_parameters(spec: EstimatorSpec, target: Target) -> dict[str, Any]:
    """submitit `update_parameters` keywords for a Slurm executor. submitit quotes values for a shell,
    which sbatch does not parse that way: a value that would need quoting is refused, not mangled."""
    params = executor_parameters(spec, target.options)
    bad = [
        Problem(
            f"compute_target.{name}",
            "has characters submitit cannot pass to sbatch unchanged (use the "
            "config with `python -m hpc_tf submit`, which quotes it for sbatch)",
            value,
        )
        for name, value in params["additional_parameters"].items()
        if isinstance(value, str) and needs_sbatch_quoting(value)
    ]
    if bad:
        raise ConfigError(bad)
    return params


def make_executor(spec: EstimatorSpec, target: Target, backend: str, folder: Path) -> "submitit.Executor":
    """A submitit executor with the estimator's resources; a config with roles (a heterogeneous job) has none
    that one allocation could give."""
    import submitit

    if spec.roles:
        message = "an executor runs your functions in one allocation; roles describe a heterogeneous job's components"
        raise ConfigError([Problem("roles", message, sorted(spec.roles))])

    executor: submitit.Executor
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
