"""The records that cross a process boundary: `job.json`, `status.json`, `tasks/rank-N.json`.

Each is a msgspec Struct with a `schema` number. Readers accept older files (a missing field takes
its default, an unknown field is ignored), so a newer hpc_tf still reads a run directory written by
an older one; `hpc_tf.rundir` is the one module that reads and writes them. The structs are
immutable: `status.json` changes only through the named transitions in `core.transitions`.

Schema history:
  job.json     1: the first typed record (older files have no `schema` field and read the same).
  status.json  1: as before, plus `scheduler_unreachable_since`/`scheduler_error`; 2 adds `restarts`;
               3 adds `sweep`, `trial_index` and `early_stop` (a trial of a sweep); 4 adds `attempts`
               and `restarts_by_cause`.
  job.json     2 adds `trial` (a sweep's trial: its sweep, index and hyperparameters); 3 adds `checkpointing`;
               4 adds `components` and `het_steps` (a heterogeneous job's components, how its steps are launched);
               5 adds `tf_config_env_max` (the longest TF_CONFIG passed in the environment, core.envsize).
  tasks/rank-N.json  2 adds `tf_config` (how TF_CONFIG reached the entry script: "env", "file" or "").
  sweep.json   1: the first (SweepRecord, written by hpc_tf.sweeps.sweepdir).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from .envsize import MAX_ARG_STRLEN

JOB_SCHEMA = 5
STATUS_SCHEMA = 4
SWEEP_SCHEMA = 1
TASK_SCHEMA = 2

TERMINAL_STATES = frozenset(
    {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE"}
)
# hpc_tf's own final word for a sweep trial its early-termination policy stopped (Slurm says COMPLETED)
EARLY_TERMINATED = "EARLY_TERMINATED"
# The verdict "the scheduler no longer knows the job and the run recorded no end": final, but revised
# if the scheduler later answers for the job (it was judged from a view that turned out stale).
LOST = "UNKNOWN"


class EnvRequest(msgspec.Struct, frozen=True):
    """What a job environment is made of (all of it goes into the environment's cache key)."""

    kind: str  # "pip" | "conda"
    packages: tuple[str, ...]
    requirements: str = ""  # content of pip_requirements_file / conda_dependencies_file
    base_python: str = ""
    base_version: str = ""
    inherit: bool = False
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    # the submitting environment's site-packages (a virtualenv's), seen by the job with `inherit`
    inherit_paths: tuple[str, ...] = ()


class InJobEnvironment(msgspec.Struct, frozen=True):
    """environment_build: job — the environment the job's tasks build (or wait for) before starting."""

    root: str
    request: EnvRequest
    tool: str = "auto"  # settings' HPC_TF_ENV_TOOL at submit time: the job builds with the same tool


class TrialInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What makes a run a trial of a sweep: the sweep, the trial's number and its hyperparameters."""

    sweep_id: str
    sweep_dir: str
    index: int
    hyperparameters: dict[str, Any] = {}  # script flag → value, as given to the entry script
    array_task: str = ""  # Slurm's `A_i` of the task that ran it
    optuna_trial: int | None = None  # bayesian sampling: the Optuna trial number


class Checkpointing(msgspec.Struct, frozen=True, kw_only=True):
    """What a run does about its time limit (issue 11): where checkpoints go, the warning signal, requeue limits."""

    checkpoint_dir: str = "checkpoints"  # relative to the run directory
    requeue_on: tuple[str, ...] = ()
    max_restarts: int | dict[str, int] = 3
    signal: str = "USR2"
    lead_seconds: int = 120
    every: str | int = "epoch"  # periodic saves: "epoch" or every N batches


HetSteps = Literal["one", "per_component"]  # a heterogeneous job's steps: one across the components, or one each


class ComponentRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One component of a heterogeneous job (config key `roles`): its role, its size, its first global rank."""

    index: int
    role: str
    node_count: int
    tasks_per_node: int
    first_rank: int

    @property
    def ntasks(self) -> int:
        return self.node_count * self.tasks_per_node


class JobRecord(msgspec.Struct, frozen=True, kw_only=True):
    """job.json: everything the in-job runtime needs, so no value passes through the job script."""

    schema: int = JOB_SCHEMA
    run_id: str
    experiment: str
    backend: str
    python: str  # the entry script's interpreter (the job environment's, or the base one)
    command: list[str]  # the entry script's argv, relative to the snapshot
    env: dict[str, str] = {}  # the user's environment_variables, as text
    default_env: dict[str, str] = {}  # hpc_tf's defaults (the user's win)
    metric_patterns: dict[str, str] = {}
    ntasks: int = 1
    distributed_backend: Literal["mpi", "ps", "multiworker"] | None = None
    parameter_server_count: int = 0
    ps_mode: Literal["managed", "script"] = "managed"
    evaluator: bool = False
    use_gpu: bool = False
    max_run_duration_seconds: int | None = None
    environment: InJobEnvironment | None = None
    requeue: bool = False
    trial: TrialInfo | None = None
    checkpointing: Checkpointing = Checkpointing()
    components: list[ComponentRecord] = []  # a heterogeneous job's, in rank order; empty: one allocation
    # "one": one srun step spanning the components; "per_component": one step each (a site with disable_hetjob_steps)
    het_steps: HetSteps = "one"
    # a TF_CONFIG longer than this (bytes of TF_CONFIG=... with its NUL) goes through a file (HPC_TF_TF_CONFIG_ENV_MAX)
    tf_config_env_max: int = MAX_ARG_STRLEN


class FirstFailure(msgspec.Struct, frozen=True, kw_only=True):
    """The task that failed first; tasks killed because of it never overwrite it."""

    rank: int
    role: str
    index: int
    host: str
    exit_code: int
    time: str
    note: str = ""


class EarlyStop(msgspec.Struct, frozen=True, kw_only=True):
    """A sweep policy's decision to stop a trial, with its inputs' summary (policy.jsonl has them all)."""

    rule: str
    interval: int  # the interval the rule fired at
    decided_at: int  # the trial's interval when it decided
    value: float | None = None
    threshold: float | None = None
    best: float | None = None
    compared: int = 0
    reason: str = ""
    time: str = ""


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt of a run (Slurm restarts a requeued job with the same id): where, when, how it ended."""

    n: int  # 0 for the first; Slurm's SLURM_RESTART_COUNT
    job_id: str | None = None
    nodes: list[str] = []
    start: str | None = None
    end: str | None = None
    cause: str = ""  # why it ended early: timeout, preemption, node_failure ("" while running or at the end)
    checkpoint_step: int | None = None  # the newest complete checkpoint when it ended
    requeue: str = ""  # what was decided: "requeued after timeout (restart 1)", "max_restarts reached ..."


class RunStatus(msgspec.Struct, frozen=True, kw_only=True):
    """status.json: what happened to the run, in Slurm's state words.

    `final` is set once the scheduler (or the local supervisor) confirmed the end; `exit_code` and
    `end_time` may be known before (the job's lead task records them). A scheduler that does not
    answer never changes the state: it sets `scheduler_unreachable_since` until it answers again.
    """

    schema: int = STATUS_SCHEMA
    run_id: str = ""
    experiment: str = ""
    backend: str = ""
    state: str = "PENDING"
    final: bool = False
    job_id: str | None = None
    exit_code: int | None = None
    nodes: list[str] = []
    submit_time: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    signals: list[str] = []
    first_failure: FirstFailure | None = None
    reason: str = ""
    note: str = ""
    message: str = ""
    restarts: int = 0
    scheduler_unreachable_since: str | None = None
    scheduler_error: str = ""
    sweep: str | None = None  # a trial's sweep id
    trial_index: int | None = None
    early_stop: EarlyStop | None = None
    attempts: list[Attempt] = []
    restarts_by_cause: dict[str, int] = {}  # requeues hpc_tf allowed, by cause (timeout, preemption, node_failure)


class TaskRecord(msgspec.Struct, frozen=True, kw_only=True):
    """tasks/rank-N.json: where one task ran, as what, and how it ended."""

    schema: int = TASK_SCHEMA
    rank: int
    role: str
    index: int
    host: str
    port: int | None = None
    local_rank: int = 0
    cuda_visible_devices: str | None = None
    start_time: str | None = None
    pid: int | None = None
    child_pid: int | None = None
    end_time: str | None = None
    exit_code: int | None = None
    stopped_after_chief: bool = False
    tf_config: Literal["", "env", "file"] = ""  # how TF_CONFIG reached the entry script (core.envsize); "": none


class ArrayChunk(msgspec.Struct, frozen=True, kw_only=True):
    """One Slurm job array of a sweep: array index i runs trial `offset + i`."""

    offset: int
    count: int
    job_id: str | None = None  # None until sbatch answered


class SweepRecord(msgspec.Struct, frozen=True, kw_only=True):
    """sweep.json: a sweep as submitted and what was done to it since (throttle, cancel, time limit)."""

    schema: int = SWEEP_SCHEMA
    sweep_id: str
    experiment: str
    backend: str
    sampling: str
    seed: int
    trial_count: int
    primary_metric_name: str
    primary_metric_goal: str
    parameter_space: dict[str, Any] = {}  # flag → ParamExpr as data (core.sweep_spec)
    policy: dict[str, Any] | None = None  # PolicySpec as data
    max_concurrent_runs: int | None = None
    max_duration_minutes: int = 10080
    max_array_size: int | None = None  # the cluster's MaxArraySize, as read at submit time
    max_array_size_source: str = ""  # where it was read, or that Slurm's default was assumed (and why)
    chunks: list[ArrayChunk] = []
    entry: list[str] = []  # the entry script's argv before script_params
    script_params: dict[str, Any] = {}  # the fixed flags (a sampled flag replaces the same one)
    submit_time: str | None = None
    deadline: str | None = None  # submit_time + max_duration_minutes
    state: str = "SUBMITTING"  # SUBMITTING, SUBMITTED, FAILED (submission), CANCELLED
    message: str = ""
    stopped: str = ""  # why the sweep was ended early (cancel, max_duration_minutes)
