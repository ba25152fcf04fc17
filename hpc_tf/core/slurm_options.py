"""The one translation of a job's Slurm options into `#SBATCH` options, for every kind of Slurm job.

Options are `(name, value)` pairs with Slurm's own names (a field's snake_case with `-`), `None` for a bare flag.
Each option has a level: "job" options describe the whole job, and sbatch passes them from a heterogeneous job's
component 0 to the others (Slurm 22.05 heterogeneous_jobs.html, "propagated options": `spec.HETJOB_JOB_OPTIONS`);
"component" options describe one component's nodes. One allocation is a job of one component, so its block carries
both levels, as component 0 of a heterogeneous job does; a later component's block carries its own only. The job
script of every job (`core.plan.slurm_plan`: one allocation, each component, each job array) and the submitit
executor (`core.plan.executor_parameters`) call `slurm_options`, so a new option reaches all of them or none.
"""

from __future__ import annotations

from typing import Literal, Sequence

from .spec import HETJOB_JOB_OPTIONS, EstimatorSpec, SlurmOptions

Directive = tuple[str, str | None]
Level = Literal["job", "component"]

# Every SlurmOptions field but additional_parameters, in the order of its #SBATCH line; additional_parameters follow.
# A new field of SlurmOptions goes here (tests/unit/test_slurm_options.py fails until it does).
OPTION_FIELDS = (
    "time",
    "partition",
    "account",
    "qos",
    "cpus_per_task",
    "mem",
    "constraint",
    "exclude",
    "reservation",
    "gpus_per_node",
)


def option_name(field: str) -> str:
    """A field's or additional_parameters key's Slurm option name: `cpus_per_task` → `cpus-per-task`."""
    return field.replace("_", "-")


def level(field: str) -> Level:
    """Whom an option applies to in a heterogeneous job: the whole job (Slurm passes it on) or each component.

    --mem is propagated too, but hpc_tf gives each component its own (`role_checks` refuses one that would inherit)."""
    return "job" if option_name(field) in HETJOB_JOB_OPTIONS else "component"


WHOLE_JOB_FIELDS = tuple(field for field in OPTION_FIELDS if level(field) == "job")
COMPONENT_FIELDS = tuple(field for field in OPTION_FIELDS if level(field) == "component")


def slurm_options(options: SlurmOptions, whole_job: bool) -> list[Directive]:
    """`options` as #SBATCH options: the named fields in OPTION_FIELDS' order, then additional_parameters (`true`/
    `null`: a bare flag; `false`: left out). `whole_job`: the block of one allocation or of a heterogeneous job's
    component 0, which carries the whole job's options too; a later component's block gets its own level only."""
    out: list[Directive] = []
    for field in OPTION_FIELDS:
        value = getattr(options, field)
        if value is not None and (whole_job or level(field) == "component"):
            out.append((option_name(field), str(value)))
    for name, value in options.additional_parameters.items():
        if value is not False and (whole_job or level(name) == "component"):
            out.append((option_name(name), None if value is None or value is True else str(value)))
    return out


def slurm_time(seconds: int) -> str:
    """Seconds → Slurm's D-HH:MM:SS (Slurm rounds up to whole minutes itself)."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"


def requeue_directives(
    requeue_on: Sequence[str], signal: str, lead_seconds: int, batch_shell: bool = False
) -> list[Directive]:
    """#SBATCH options of a run that may be requeued: `--requeue`, and a warning signal when the time limit or a
    preemption with notice is among the causes. To every step's tasks (no `B:`: the batch shell is `exec`ed into srun,
    and the tasks' runtime handles the signal); with `batch_shell` (the batch shell is `exec`ed into Open MPI's
    mpirun, whose rank on the first node lives in the batch step, which step signals never reach) to the batch shell
    alone (`B:`): mpirun passes SIGUSR1/SIGUSR2 on to every rank."""
    if not requeue_on:
        return [("no-requeue", None)]
    out: list[Directive] = [("requeue", None)]
    if "timeout" in requeue_on or "preemption" in requeue_on:
        out.append(("signal", f"{'B:' if batch_shell else ''}{signal}@{lead_seconds}"))
    return out


def asks_requeue(options: SlurmOptions) -> bool:
    """`requeue: true` or `requeue: null` (a bare flag) in additional_parameters; `false` does not."""
    params = options.additional_parameters
    return "requeue" in params and params["requeue"] is not False


def requeue_options(spec: EstimatorSpec, options: SlurmOptions, batch_shell: bool = False) -> list[Directive]:
    """The whole job's requeue options: requeue_on's `--requeue` and warning signal (to the batch shell with
    `batch_shell`, see `requeue_directives`), else `--no-requeue` unless additional_parameters asks for requeue.

    `--no-requeue`: Slurm's default (JobRequeue=1) would silently rerun the whole script from the start after a node
    failure; a job is restarted only when the config asks for it, and status.json records each restart."""
    if spec.requeue_on or not asks_requeue(options):
        return requeue_directives(spec.requeue_on, spec.checkpoint_signal, spec.checkpoint_lead_seconds, batch_shell)
    return []
