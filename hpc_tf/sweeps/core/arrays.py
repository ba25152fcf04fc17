"""A sweep's trials as Slurm job arrays: how many arrays, their `--array` ranges, the job script of each,
and what a trial runs. Pure: the cluster's limits and the interpreter are passed in.

Slurm's `MaxArraySize` caps the array *index* (the highest is MaxArraySize − 1), and
`SchedulerParameters=max_array_tasks` the task count: a sweep with more trials than that is split into
arrays `0-(k-1)` that each know their trial offset (`--trial-offset` on the launch line), so trial
`offset + SLURM_ARRAY_TASK_ID` runs in array task `SLURM_ARRAY_TASK_ID`. Arrays after the first wait for
the one before (`--dependency=afterany:`), so `max_concurrent_runs` (`%N` on each array) holds across them.
"""

from __future__ import annotations

from typing import Any, Mapping

import msgspec

from ...core.plan import BATCH_LOG, LAUNCHER_LOG, ScriptPlan, entry_argv, script_argv, slurm_plan
from ...core.records import ArrayChunk
from ...core.spec import EstimatorSpec, SlurmOptions

TRIAL_BATCH_LOG = "logs/slurm-%A_%a.out"
TRIAL_LAUNCHER_LOG = "logs/launcher-%A_%a-%t.log"
SLURM_DEFAULT_MAX_ARRAY_SIZE = 1001  # Slurm's own default: indexes 0-1000


def chunk_size(max_array_size: int | None, max_array_tasks: int | None) -> int:
    """The most trials one array can hold on this cluster."""
    size = (max_array_size or SLURM_DEFAULT_MAX_ARRAY_SIZE) - 1
    return max(1, min(size, max_array_tasks) if max_array_tasks else size)


def plan_chunks(trials: int, max_array_size: int | None, max_array_tasks: int | None = None) -> list[ArrayChunk]:
    """The arrays a sweep of `trials` trials is submitted as (one, unless the cluster's limits say otherwise)."""
    size = chunk_size(max_array_size, max_array_tasks)
    return [ArrayChunk(offset=start, count=min(size, trials - start)) for start in range(0, trials, size)]


def array_range(count: int, throttle: int | None) -> str:
    """`--array` of one chunk: `0-(count-1)`, with `%throttle` when fewer may run at once than there are tasks."""
    text = f"0-{count - 1}" if count > 1 else "0"
    return f"{text}%{throttle}" if throttle is not None and throttle < count else text


def array_plan(
    spec: EstimatorSpec,
    options: SlurmOptions,
    python: str,
    package_root: str,
    chunk: ArrayChunk,
    throttle: int | None,
    after: str | None = None,
    as_root: bool = False,
) -> ScriptPlan:
    """One chunk's job script: the run's script with `--array`, per-task log names and the trial offset."""
    plan = slurm_plan(spec, options, python, package_root, as_root)
    directives: list[tuple[str, str | None]] = []
    for name, value in plan.directives:
        directives.append((name, TRIAL_BATCH_LOG if name == "output" and value == BATCH_LOG else value))
        if name == "job-name":
            directives.append(("array", array_range(chunk.count, throttle)))
            if after:
                directives.append(("dependency", f"afterany:{after}"))
    launch = [TRIAL_LAUNCHER_LOG.join(arg.split(LAUNCHER_LOG)) if LAUNCHER_LOG in arg else arg for arg in plan.launch]
    launch += ["--trial-offset", str(chunk.offset)]
    return msgspec.structs.replace(plan, directives=directives, launch=launch)


def trial_params(fixed: Mapping[str, Any], sampled: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's script_params: a sampled flag replaces the same fixed flag (in its place); new ones follow."""
    return {**fixed, **sampled}


def trial_command(spec_entry: list[str], fixed: Mapping[str, Any], sampled: Mapping[str, Any]) -> list[str]:
    """The trial's argv: the entry script, then the fixed flags with the sampled ones merged in."""
    return [*spec_entry, *script_argv(trial_params(fixed, sampled))]


def entry_only(spec: EstimatorSpec, python: str) -> list[str]:
    """The entry script's argv without any flag (a trial adds its own)."""
    return entry_argv(msgspec.structs.replace(spec, script_params={}), python)


def trial_run_id(sweep_id: str, index: int) -> str:
    """A trial's run id, HyperDrive's `HD_<id>_<n>` in hpc_tf's words: `<sweep id>_<n>`."""
    return f"{sweep_id}_{index}"
