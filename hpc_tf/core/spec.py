"""The estimator config's schema: `EstimatorSpec` and `SlurmOptions`, with the derived counts.

The only module that knows the config's shape. Validation rules are in `validation`, loading
(YAML, `--set`, files on disk) in `hpc_tf.config.loading`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import Meta

from .tfcluster import MAX_TF_TASKS

Scalar = Union[str, int, float, bool]
ParamValue = Union[Scalar, None, list[Scalar]]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$", re.ASCII)
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$", re.ASCII)
# Slurm --time forms: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, or UNLIMITED.
SLURM_TIME_RE = re.compile(
    r"^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+(:\d{1,2}(:\d{1,2})?)?|UNLIMITED|INFINITE)$", re.ASCII
)
SLURM_MEM_RE = re.compile(r"^\d+[KMGT]?B?$", re.I | re.ASCII)
SBATCH_OPTION_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
DISTRIBUTED_BACKENDS = ("mpi", "ps", "multiworker")
# The signal names sbatch 22.05 takes for --signal (src/common/proc_args.c, signals_mapping[] of sig_name2num; any
# case, an optional SIG prefix, or a number): PWR is not one of them ("Invalid --signal specification").
SBATCH_SIGNALS = (
    *("HUP", "INT", "QUIT", "ABRT", "KILL", "ALRM", "TERM", "USR1"),
    *("USR2", "URG", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "XCPU"),
)
# Those checkpoint_signal may name (EstimatorSpec's Literal below): the ones the task's runtime can own. USR2 by
# default: NCCL catches USR1 (nccl #704, submitit #1697). Not KILL, STOP (cannot be caught); TERM, INT, CONT (Slurm's
# own at a job's end and on scancel, which the runtime takes as the end); TSTP, TTIN, TTOU (they stop processes);
# HUP, QUIT, ABRT, ALRM (programs the script starts take them for their own meaning).
CHECKPOINT_SIGNALS = ("USR2", "USR1", "URG", "XCPU")
# What the run directory itself holds (hpc_tf/rundir.py's layout; a test checks every RunDir path against it): a
# checkpoint_dir inside one of them would be written over, or found already there (FileExistsError), or its files
# would be the run's own (logs and records that change every attempt: the no-progress guard would never fire).
RUN_DIR_ENTRIES = frozenset(
    {
        *("config.yaml", "job.json", "job.sh", "snapshot", "outputs", "work", "logs", "tasks", "metrics"),
        *("policy.jsonl", "tensorboard", "environment.json", "status.json", ".submitit", ".status.lock", ".reserve"),
    }
)
# Per-role placement (`roles:`, a heterogeneous job): the roles in the order of the job's components and ranks.
ROLE_NAMES = ("chief", "ps", "worker", "evaluator")
# sbatch options Slurm passes on from one component of a heterogeneous job to the next (Slurm 22.05
# heterogeneous_jobs.html, "propagated options"; mail and licenses work on the first component only): they
# describe the whole job, so they belong in compute_target, never in one role's options.
HETJOB_JOB_OPTIONS = frozenset(
    {
        *("account", "acctg-freq", "begin", "cluster-constraint", "clusters", "comment", "deadline", "delay-boot"),
        *("dependency", "error", "export", "export-file", "exclude", "get-user-env", "gid", "hold", "ignore-pbs"),
        *("immediate", "input", "job-name", "licenses", "mail-type", "mail-user", "mcs-label", "nice", "no-kill"),
        *("no-requeue", "open-mode", "output", "parsable", "priority", "profile", "propagate", "qos", "quiet"),
        *("reboot", "requeue", "reservation", "signal", "test-only", "time", "time-min", "uid", "verbose", "wait"),
        *("wait-all-nodes", "wckey"),
    }
)
# Scale (README "Scale"): task and node counts go as far as Slurm itself takes them.
# Slurm (22.05, src/common/hostlist.c MAX_RANGE) reads at most 64 Ki hosts in one hostlist range, and it writes an
# allocation's consecutively numbered nodes as one range: `scontrol show hostlist` makes n[1-70000] of 70,000 nodes,
# which `scontrol show hostnames` and srun then refuse ("Too many hosts in range"), so a larger job could not run.
MAX_NODES = 64 * 1024
# slurm.conf MaxTasksPerNode "may not exceed 65533": a step's tasks per node are 16-bit (NO_VAL16, INFINITE16 above).
MAX_TASKS_PER_NODE = 65_533
MAX_SECONDS = 366 * 86400  # a year: longer is a typo (Slurm itself stops at UNLIMITED)
MODULE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+/-]*$", re.ASCII)  # never an option: no leading '-'
CONDA_SPEC_RE = re.compile(r"^[A-Za-z0-9_.:/-]+(\[[^\]]*\])?\s*([<>=!~ ,.*0-9A-Za-z_+-]*)$")


class SlurmOptions(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Slurm options of a compute target, with Slurm's own option names in snake_case."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: str | Annotated[int, Meta(ge=1, le=MAX_SECONDS // 60)] | None = None
    cpus_per_task: Annotated[int, Meta(ge=1, le=4096)] | None = None
    mem: str | Annotated[int, Meta(ge=1)] | None = None  # `4000` (MB) or `16G`
    gpus_per_node: Annotated[int, Meta(ge=0, le=64)] | None = None
    constraint: str | None = None
    exclude: str | None = None
    reservation: str | None = None
    additional_parameters: dict[str, Any] = {}


class RoleOptions(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One role's component of a heterogeneous job (`roles:`): the Slurm options of its own nodes, and its size.

    Options of the whole job (time, account, qos, exclude, reservation, requeue) stay in compute_target: Slurm
    passes them from the first component to the others."""

    partition: str | None = None
    cpus_per_task: Annotated[int, Meta(ge=1, le=4096)] | None = None
    mem: str | Annotated[int, Meta(ge=1)] | None = None
    gpus_per_node: Annotated[int, Meta(ge=0, le=64)] | None = None
    constraint: str | None = None
    additional_parameters: dict[str, Any] = {}
    node_count: Annotated[int, Meta(ge=1, le=MAX_NODES)] | None = (
        None  # None: one node per process_count_per_node tasks
    )
    process_count_per_node: Annotated[int, Meta(ge=1, le=MAX_TASKS_PER_NODE)] | None = None  # None: 1


class EstimatorSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A TensorFlow training job, with the Azure ML estimator's parameter names and defaults."""

    source_directory: str
    entry_script: str
    experiment: str = "default"
    script_params: dict[str, Any] = {}
    compute_target: Union[str, dict[str, Any], None] = None
    conda_packages: list[str] = []
    pip_packages: list[str] = []
    pip_requirements_file: str | None = None
    conda_dependencies_file: str | None = None
    # hpc_tf's own environment keys (see README "Environments")
    modules: list[str] = []
    setup: list[str] = []
    python: str | None = None
    inherit_base_packages: bool = False
    environment_build: Literal["submit", "job"] = "submit"
    pip_find_links: list[str] = []
    pip_no_index: bool = False
    # metrics scraped from rank 0's stdout: name → regular expression with one group (the value)
    metric_patterns: dict[str, str] = {}
    use_gpu: bool = False
    node_count: Annotated[int, Meta(ge=1, le=MAX_NODES)] = 1
    process_count_per_node: Annotated[int, Meta(ge=1, le=MAX_TASKS_PER_NODE)] | None = None  # None: 1, or spread 'ps'
    distributed_backend: Literal["mpi", "ps", "multiworker"] | None = None
    # a TF cluster's tasks ('ps', 'multiworker') each listen on a port of the job's block: at most MAX_TF_TASKS
    worker_count: Annotated[int, Meta(ge=1, le=MAX_TF_TASKS)] = 1
    parameter_server_count: Annotated[int, Meta(ge=0, le=MAX_TF_TASKS)] = 1
    environment_variables: dict[str, Any] = {}
    max_run_duration_seconds: Annotated[int, Meta(ge=1, le=MAX_SECONDS)] | None = None
    # hpc_tf's own keys for distributed training (the estimator has no equivalent)
    launcher: Literal["srun", "mpirun"] = "srun"
    mpi_plugin: str = "pmix"
    launcher_args: list[str] = []
    ps_mode: Literal["managed", "script"] = "managed"
    evaluator: bool = False
    # runs that outlive their time limit (issue 11): checkpoints, a warning signal, requeue
    checkpoint_dir: str = "checkpoints"  # inside the run directory; HPC_TF_CHECKPOINT_DIR
    requeue_on: list[Literal["preemption", "timeout", "node_failure"]] = []
    max_restarts: Annotated[int, Meta(ge=0, le=1000)] | dict[str, Annotated[int, Meta(ge=0, le=1000)]] = 3
    # CHECKPOINT_SIGNALS: names sbatch 22.05's --signal takes that the task's runtime can own (not PWR, which sbatch
    # refuses: "Invalid --signal specification")
    checkpoint_signal: Literal["USR2", "USR1", "URG", "XCPU"] = "USR2"
    checkpoint_lead_seconds: Annotated[int, Meta(ge=10, le=3600)] = 120
    # how often hpc_tf.keras.Checkpointing saves besides the warning: every epoch, or every N batches (a preemption or
    # a node failure without notice loses at most that much); HPC_TF_CHECKPOINT_EVERY for scripts of their own
    checkpoint_every: Literal["epoch"] | Annotated[int, Meta(ge=1, le=1_000_000_000)] = "epoch"
    # per-role placement (issue 12): role → its own component of a heterogeneous job; 'ps' only (core/components.py)
    roles: dict[str, RoleOptions] = {}

    @property
    def ntasks(self) -> int:
        """How many tasks the job starts: one per role for 'ps', one per slot otherwise."""
        if self.distributed_backend == "ps":
            return 1 + self.parameter_server_count + self.worker_count + int(self.evaluator)
        return self.node_count * self.per_node

    @property
    def per_node(self) -> int:
        """Processes per node (process_count_per_node, default 1)."""
        return self.process_count_per_node or 1

    @property
    def most_tasks_per_node(self) -> int:
        """The most tasks one node runs (spread tasks fill the first nodes first)."""
        return -(-self.ntasks // self.node_count) if self.spread_tasks else self.per_node

    @property
    def spread_tasks(self) -> bool:
        """'ps' without process_count_per_node: the job asks Slurm for its tasks (one per role) spread over
        node_count nodes, as Azure ML does with the seed's `node_count=2, worker_count=2, ...`."""
        return self.distributed_backend == "ps" and self.process_count_per_node is None

    @property
    def environment_kind(self) -> str | None:
        """'pip' or 'conda' when the job asks for packages, None when it runs the base interpreter."""
        if self.conda_packages or self.conda_dependencies_file:
            return "conda"
        if self.pip_packages or self.pip_requirements_file:
            return "pip"
        return None

    @property
    def roles_text(self) -> str:
        text = f"1 chief + {self.parameter_server_count} ps + {self.worker_count} workers"
        return text + (" + 1 evaluator" if self.evaluator else "")

    @property
    def slot_count(self) -> int:
        """node_count × process_count_per_node: the tasks Slurm is asked to make room for."""
        return self.node_count * self.per_node
