"""The one translation of a job's Slurm options into `#SBATCH` options, for every kind of Slurm job.

Options are `(name, value)` pairs with Slurm's own names (a field's snake_case with `-`), `None` for a bare flag.
Each option has a level: "job" options describe the whole job, and sbatch passes them from a heterogeneous job's
component 0 to the others (Slurm 22.05 heterogeneous_jobs.html, "propagated options": `spec.HETJOB_JOB_OPTIONS`);
"component" options describe one component's nodes. One allocation is a job of one component, so its block carries
both levels, as component 0 of a heterogeneous job does; a later component's block carries its own only. The job
script of every job (`core.plan.slurm_plan`: one allocation, each component, each job array) and the submitit
executor (`core.plan.executor_parameters`) call `slurm_options`, so a new option reaches all of them or none.

Names are read as sbatch reads them (issue 19): `sbatch_option` resolves one against sbatch 22.05's long-option table
(SBATCH_LONG_OPTIONS) the way getopt_long does, so `sig` is --signal everywhere hpc_tf looks at a name (its level,
whether it asks for requeue, the options hpc_tf sets itself: HPC_TF_OPTIONS, refused in additional_parameters).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal, NamedTuple, Sequence

from .spec import HETJOB_JOB_OPTIONS, EstimatorSpec, SlurmOptions

Directive = tuple[str, str | None]
Level = Literal["job", "component"]

# sbatch 22.05's long options, in the order of its getopt_long table (src/common/slurm_opt.c, common_options[]:
# those sbatch takes; `sbatch --help` leaves some out). tests/test_hardening_requeue_jobs.py checks it against sbatch.
_SBATCH_TABLE = """
    account acctg-freq array batch begin bb bbf cluster-constraint chdir cluster clusters comment container context
    contiguous constraint core-spec cores-per-socket cpu-freq cpus-per-gpu cpus-per-task deadline delay-boot
    dependency distribution error exclude exclusive export export-file extra-node-info get-user-env gid gpu-bind
    gpu-freq gpus gpus-per-node gpus-per-socket gpus-per-task gres gres-flags help hint hold ignore-pbs input job-name
    kill-on-invalid-dep licenses mail-type mail-user mcs-label mem mem-bind mem-per-cpu mem-per-gpu mincpus network
    nice no-kill no-requeue nodefile nodelist nodes ntasks ntasks-per-core ntasks-per-gpu ntasks-per-node
    ntasks-per-socket ntasks-per-tres open-mode output overcommit oversubscribe parsable partition power prefer
    priority profile propagate qos quiet reboot requeue reservation signal sockets-per-node spread-job switches
    tasks-per-node test-only thread-spec threads-per-core time time-min tmp uid use-min-nodes verbose version usage
    wait wait-all-nodes wckey wrap
    """
SBATCH_LONG_OPTIONS = tuple(_SBATCH_TABLE.split())
# Those that take no value (getopt no_argument): `--hold=no` is sbatch's error "doesn't allow an argument". Read
# back from sbatch 22.05 on the dev cluster (help, usage, version and wrap aside: hpc_tf sets those).
SBATCH_FLAG_OPTIONS = frozenset(
    [
        "contiguous",
        "hold",
        "ignore-pbs",
        "no-requeue",
        "overcommit",
        "oversubscribe",
        "parsable",
        "quiet",
        "reboot",
        "requeue",
        "spread-job",
        "test-only",
        "use-min-nodes",
        "verbose",
        "wait",
    ]
)
# Two names of one option (the same getopt `val` and argument): a prefix of both is not ambiguous to getopt_long.
SBATCH_ALIASES = {"tasks-per-node": "ntasks-per-node"}

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


class SbatchOption(NamedTuple):
    """What sbatch makes of `--NAME`: the option it reads (None: none), and every option NAME is a prefix of."""

    option: str | None
    candidates: tuple[str, ...]

    @property
    def ambiguous(self) -> bool:
        return self.option is None and len(self.candidates) > 1


@lru_cache(maxsize=1024)
def sbatch_option(name: str) -> SbatchOption:
    """`--NAME` as sbatch's getopt_long (glibc) reads it: the option of that exact name; else the one option NAME is
    a prefix of (`sig` is --signal); a prefix of several distinct options is ambiguous (sbatch refuses it), a prefix
    of none unknown (a site's SPANK plugin may add it: sbatch decides). NAME has `-`, not `_`."""
    if name in SBATCH_LONG_OPTIONS:
        return SbatchOption(name, (name,))
    found = tuple(o for o in SBATCH_LONG_OPTIONS if name and o.startswith(name))
    distinct = {SBATCH_ALIASES.get(o, o) for o in found}
    return SbatchOption(found[0] if len(distinct) == 1 else None, found)


def option_name(field: str) -> str:
    """A field's or additional_parameters key's Slurm option name: `cpus_per_task` → `cpus-per-task`; an
    abbreviation as the option sbatch reads it as (`mail_ty` → `mail-type`), so hpc_tf reads it as sbatch does."""
    name = field.replace("_", "-")
    return sbatch_option(name).option or name


def level(field: str) -> Level:
    """Whom an option applies to in a heterogeneous job: the whole job (Slurm passes it on) or each component.

    --mem is propagated too, but hpc_tf gives each component its own (`role_checks` refuses one that would inherit)."""
    return "job" if option_name(field) in HETJOB_JOB_OPTIONS else "component"


WHOLE_JOB_FIELDS = tuple(field for field in OPTION_FIELDS if level(field) == "job")
COMPONENT_FIELDS = tuple(field for field in OPTION_FIELDS if level(field) == "component")

_LAYOUT = "use process_count_per_node: every task computes its TF_CONFIG from the task layout hpc_tf asks for"
_LOG = "hpc_tf writes the batch log to the run directory's logs/slurm-<job>.out, appended attempt after attempt"
_ANSWER = "hpc_tf reads the job id from sbatch's answer"
# sbatch options hpc_tf sets itself or depends on → what to use instead. An additional_parameters key that sbatch
# reads as one of them (its name, or any prefix getopt_long takes for it) is refused: its #SBATCH line would come
# after hpc_tf's and silently win (`sig: USR1@5` would take the warning signal away from a run with requeue_on).
HPC_TF_OPTIONS: dict[str, str] = {
    **{option_name(f): f"use compute_target.{f} (an option of the whole job)" for f in WHOLE_JOB_FIELDS},
    **{option_name(f): f"use compute_target.{f} (roles.<role>.{f} for one role)" for f in COMPONENT_FIELDS},
    "time": "use max_run_duration_seconds or compute_target.time",
    "nodes": "use node_count (roles.<role>.node_count for one role)",
    "ntasks": "use node_count and process_count_per_node (worker_count and parameter_server_count for 'ps')",
    **dict.fromkeys(("ntasks-per-node", "tasks-per-node", "ntasks-per-core", "ntasks-per-socket"), _LAYOUT),
    **dict.fromkeys(("ntasks-per-gpu", "ntasks-per-tres", "distribution"), _LAYOUT),
    "signal": "use checkpoint_signal and checkpoint_lead_seconds (with requeue_on)",
    "no-requeue": "use requeue_on (empty, the default, gives --no-requeue)",
    "job-name": "use experiment",
    **dict.fromkeys(("output", "error", "open-mode"), _LOG),
    "chdir": "the job runs in its run directory, on a snapshot of source_directory",
    "array": "use hyperdrive (a sweep is submitted as job arrays)",
    "wrap": "use entry_script",
    **dict.fromkeys(("parsable", "quiet"), _ANSWER),
    "test-only": "use `python -m hpc_tf render`: sbatch --test-only submits nothing",
    "wait": "use `python -m hpc_tf submit --wait`",
    **dict.fromkeys(("help", "usage", "version"), "sbatch would print it and submit nothing"),
    **dict.fromkeys(("clusters", "cluster"), "hpc_tf follows its jobs on this machine's cluster (SLURM_CONF)"),
}


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


def time_parts(text: str) -> tuple[int, int, int, int] | None:
    """An sbatch --time text as (days, hours, minutes, seconds), each as written, the ones not written 0: `M`,
    `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S` (Slurm 22.05 time_str2secs, which adds them up unchecked: `5:99` is
    399 s). None for UNLIMITED, INFINITE or another shape."""
    days, dash, clock = text.partition("-") if "-" in text else ("0", "", text)
    numbers = clock.split(":")
    if not all(n.isascii() and n.isdigit() for n in [*numbers, *([days] if dash else [])]) or len(numbers) > 3:
        return None
    values = [int(n) for n in numbers]
    if dash:
        hours, minutes, seconds = [*values, 0, 0][:3]
        return int(days), hours, minutes, seconds
    if len(values) == 3:
        return 0, values[0], values[1], values[2]
    return 0, 0, values[0], values[1] if len(values) == 2 else 0


def time_limit_seconds(value: str | int | None) -> int | None:
    """compute_target.time as seconds (an integer is minutes); None: no limit given, UNLIMITED or unreadable.
    (Slurm rounds a limit up to whole minutes and takes 0 as no limit: field_checks refuses what that changes.)"""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value * 60
    parts = time_parts(value)
    return None if parts is None else parts[0] * 86400 + parts[1] * 3600 + parts[2] * 60 + parts[3]


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
    """`requeue: true` or `requeue: null` (a bare flag) in additional_parameters, under any name sbatch reads as
    --requeue (`requeu`); `false` does not."""
    return any(option_name(k) == "requeue" and v is not False for k, v in options.additional_parameters.items())


def requeue_options(spec: EstimatorSpec, options: SlurmOptions, batch_shell: bool = False) -> list[Directive]:
    """The whole job's requeue options: requeue_on's `--requeue` and warning signal (to the batch shell with
    `batch_shell`, see `requeue_directives`), else `--no-requeue` unless additional_parameters asks for requeue.

    `--no-requeue`: Slurm's default (JobRequeue=1) would silently rerun the whole script from the start after a node
    failure; a job is restarted only when the config asks for it, and status.json records each restart."""
    if spec.requeue_on or not asks_requeue(options):
        return requeue_directives(spec.requeue_on, spec.checkpoint_signal, spec.checkpoint_lead_seconds, batch_shell)
    return []
