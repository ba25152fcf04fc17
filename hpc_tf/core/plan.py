"""Pure derivation of what a job runs: sbatch directives, the launch argv and the task's command.

Nothing here reads the environment or starts a process; the backends and the CLI pass in
what they looked up (interpreter path, chosen backend).
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, Mapping

import msgspec

from .envsize import MAX_ARG_STRLEN
from .records import InJobEnvironment, JobRecord
from .requeue import checkpointing, requeue_directives
from .spec import EstimatorSpec, ParamValue, SlurmOptions
from .tfcluster import Slot, managed_role

# Paths inside the run directory that the job script refers to. The script runs with the run
# directory as its working directory (sbatch --chdir / the local supervisor's cwd), so the script
# text never contains the run directory itself: `render` shows exactly what `submit` submits.
BATCH_LOG = "logs/slurm-%j.out"
LAUNCHER_LOG = "logs/launcher-%t.log"
# The in-job entry point, run by every task (srun, mpirun or the local launcher) in the run directory.
JOB_MODULE = "hpc_tf.job"


class ScriptPlan(msgspec.Struct, frozen=True):
    """Everything a job script template needs, already derived and typed."""

    backend: str
    directives: list[tuple[str, str | None]] = []
    launch: list[str] = []
    package_root: str = ""
    modules: list[str] = []
    setup: list[str] = []
    # a heterogeneous job (roles:, core/hetjob.py): (role, #SBATCH options) of each component; `directives` is empty
    components: list[tuple[str, list[tuple[str, str | None]]]] = []


def slurm_time(seconds: int) -> str:
    """Seconds → Slurm's D-HH:MM:SS (Slurm rounds up to whole minutes itself)."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"


def gpus_per_node(spec: EstimatorSpec, options: SlurmOptions) -> int:
    """GPUs a job asks for per node: the target's gpus_per_node, else one per process; 0 without use_gpu."""
    return (options.gpus_per_node or spec.most_tasks_per_node) if spec.use_gpu else 0


def slurm_options(spec: EstimatorSpec, options: SlurmOptions) -> list[tuple[str, str | None]]:
    """The one translation of a compute target into Slurm options, `(name, value)` with `None` for a bare
    flag, used by both the job script and the submitit executor: the time limit, the target's named
    options, GPUs, then additional_parameters (`true`/`null`: a bare flag; `false`: left out)."""
    out: list[tuple[str, str | None]] = []
    if spec.max_run_duration_seconds is not None:
        out.append(("time", slurm_time(spec.max_run_duration_seconds)))
    elif options.time is not None:
        out.append(("time", str(options.time)))
    for name in ("partition", "account", "qos", "cpus_per_task", "mem", "constraint", "exclude", "reservation"):
        value = getattr(options, name)
        if value is not None:
            out.append((name.replace("_", "-"), str(value)))
    gpus = gpus_per_node(spec, options)
    if gpus:
        out.append(("gpus-per-node", str(gpus)))
    for name, value in options.additional_parameters.items():
        if value is not False:
            out.append((name.replace("_", "-"), None if value is None or value is True else str(value)))
    return out


def sbatch_directives(spec: EstimatorSpec, options: SlurmOptions) -> list[tuple[str, str | None]]:
    """The #SBATCH options of a job, in a stable order: layout first, then the target's options.

    `--no-requeue`: Slurm's default (JobRequeue=1) would silently rerun the whole script from the start
    after a node failure; a job is restarted only when the config asks for it (`requeue: true` in
    additional_parameters), and a restart is recorded in status.json (`restarts`) when it happens."""
    layout = [
        ("job-name", spec.experiment),
        ("output", BATCH_LOG),
        ("open-mode", "append"),
        ("nodes", str(spec.node_count)),
        *task_layout(spec),
    ]
    if spec.requeue_on:
        mpirun = spec.launcher == "mpirun"
        layout += requeue_directives(spec.requeue_on, spec.checkpoint_signal, spec.checkpoint_lead_seconds, mpirun)
    elif not asks_requeue(options):
        layout.append(("no-requeue", None))
    return layout + slurm_options(spec, options)


def asks_requeue(options: SlurmOptions) -> bool:
    """`requeue: true` or `requeue: null` (a bare flag) in additional_parameters; `false` does not."""
    params = options.additional_parameters
    return "requeue" in params and params["requeue"] is not False


def task_layout(spec: EstimatorSpec) -> list[tuple[str, str | None]]:
    """How many tasks Slurm makes room for: `ntasks-per-node`, or for ps/multiworker jobs that did not
    give process_count_per_node, `ntasks` spread over node_count nodes by Slurm itself (the seed's
    `node_count=2, worker_count=2, parameter_server_count=1` means 4 tasks on 2 nodes)."""
    if spec.spread_tasks:
        return [("ntasks", str(spec.ntasks))]
    return [("ntasks-per-node", str(spec.per_node))]


def executor_parameters(spec: EstimatorSpec, options: SlurmOptions) -> dict[str, Any]:
    """submitit `update_parameters` keywords giving the same #SBATCH lines as `sbatch_directives`.

    Everything but the layout goes through submitit's `additional_parameters`, whose keys override its
    own defaults (its `time=5`) and whose `True` is a bare flag. submitit quotes values for a shell,
    which sbatch does not parse that way: values that would need quoting are refused by the caller.
    """
    params: dict[str, Any] = {"nodes": spec.node_count, "job_name": spec.experiment}
    extra: dict[str, Any] = {name.replace("-", "_"): value for name, value in task_layout(spec)}
    if spec.requeue_on or not asks_requeue(options):
        requeue = requeue_directives(spec.requeue_on, spec.checkpoint_signal, spec.checkpoint_lead_seconds)
        extra.update({name.replace("-", "_"): True if value is None else value for name, value in requeue})
    extra.update(
        {name.replace("-", "_"): True if value is None else value for name, value in slurm_options(spec, options)}
    )
    return {**params, "additional_parameters": extra}


def slurm_plan(
    spec: EstimatorSpec, options: SlurmOptions, python: str, package_root: str, as_root: bool = False
) -> ScriptPlan:
    """The Slurm job: #SBATCH header, then `exec` of the launcher (srun, or mpirun for Horovod)."""
    if spec.roles:  # one allocation would put every role on the same kind of node: never render it
        raise ValueError("a config with roles is a heterogeneous job: plan it with core.hetjob.job_plan")
    if spec.distributed_backend == "mpi" and spec.launcher == "mpirun":
        launch = mpirun_argv(spec, python, package_root, as_root)
    else:
        launch = srun_argv(spec, python)
    return ScriptPlan(
        "slurm", sbatch_directives(spec, options), launch, package_root, list(spec.modules), list(spec.setup)
    )


def srun_argv(spec: EstimatorSpec, python: str) -> list[str]:
    """srun starts hpc_tf's in-job entry on every task; a task that fails ends the step."""
    argv = ["srun", "--unbuffered", "--kill-on-bad-exit=1", f"--ntasks={spec.ntasks}", f"--output={LAUNCHER_LOG}"]
    if spec.distributed_backend == "mpi":
        argv.append(f"--mpi={spec.mpi_plugin}")
    return argv + list(spec.launcher_args) + [python, "-u", "-m", JOB_MODULE, "."]


# Forwarded to every rank by name (Horovod's practice: values never pass through quoting).
MPIRUN_FORWARD = ("PATH", "HPC_TF_BACKEND", "PYTHONUNBUFFERED")
MPIRUN_FLAGS = ("--bind-to", "none", "--map-by", "slot", "--mca", "pml", "ob1", "--mca", "btl", "^openib")


def mpirun_argv(spec: EstimatorSpec, python: str, package_root: str, as_root: bool = False) -> list[str]:
    """Open MPI's mpirun inside the allocation (it starts its daemons through Slurm, no SSH).

    Flags from Horovod's guide: no binding (TensorFlow manages its threads), ranks mapped by
    slot (Slurm's tasks per node), the ob1 point-to-point layer without openib.
    """
    argv = ["mpirun", "-np", str(spec.ntasks), *MPIRUN_FLAGS]
    if as_root:  # the job runs as its submitter; Open MPI refuses root unless told
        argv.append("--allow-run-as-root")
    for name in MPIRUN_FORWARD + (("PYTHONPATH",) if package_root else ()):
        argv += ["-x", name]
    return argv + list(spec.launcher_args) + [python, "-u", "-m", JOB_MODULE, "."]


def local_plan(spec: EstimatorSpec, python: str, package_root: str, as_root: bool = False) -> ScriptPlan:
    """The local job: the same in-job runtime on this machine, one process per task.

    'mpi' runs under a local mpirun (Horovod over MPI on one host); 'ps' and 'multiworker' under
    hpc_tf's task launcher, which gives each task its rank and ends the job when one fails.
    """
    if spec.distributed_backend == "mpi":
        launch = mpirun_argv(spec, python, package_root, as_root)
        launch.insert(launch.index(python), "--oversubscribe")
    elif spec.distributed_backend:
        launch = [python, "-u", "-m", "hpc_tf.job.local_tasks", ".", str(spec.ntasks)]
    else:
        launch = [python, "-u", "-m", JOB_MODULE, "."]
    return ScriptPlan("local", [], launch, package_root, list(spec.modules), list(spec.setup))


def entry_argv(spec: EstimatorSpec, python: str) -> list[str]:
    """What each task runs, relative to the snapshot of source_directory. The entry script is always a
    path (`./--version` for a script named `--version`), so Python never reads it as an option."""
    script = PurePath(spec.entry_script)
    return [
        python,
        "-u",
        str(script) if script.parts[0] not in ("-",) and not str(script).startswith("-") else f"./{script}",
        *script_argv(spec.script_params),
    ]


def script_argv(params: Mapping[str, ParamValue]) -> list[str]:
    """script_params → argv, in the given order: None is a bare flag, a list repeats the flag."""
    argv: list[str] = []
    for key, value in params.items():
        if value is None:
            argv.append(key)
        elif isinstance(value, list):
            for item in value:
                argv += [key, str(item)]
        else:
            argv += [key, str(value)]
    return argv


def env_text(value: str | int | float | bool) -> str:
    """How an environment_variables value is written into the job's environment."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def user_environment(spec: EstimatorSpec) -> dict[str, str]:
    """The user's environment_variables as text, exactly as the task will see them."""
    return {name: env_text(value) for name, value in spec.environment_variables.items()}


def default_environment(spec: EstimatorSpec) -> dict[str, str]:
    """hpc_tf's defaults for the entry script (environment_variables override them).

    Distributed jobs use tf-keras (`TF_USE_LEGACY_KERAS=1`): with Keras 3, Horovod's Keras API and
    `model.fit` under ParameterServerStrategy and MultiWorkerMirroredStrategy fail, while tf-keras
    runs all of them. Set TF_USE_LEGACY_KERAS to "0" in environment_variables to use Keras 3.
    HPC_TF_KERAS_ALIAS=1: a plain `import keras` gives tf-keras too (Horovod's Keras callbacks import
    it that way); "0" turns that off (see hpc_tf/job/child_site/sitecustomize.py).
    """
    return {"TF_USE_LEGACY_KERAS": "1", "HPC_TF_KERAS_ALIAS": "1"} if spec.distributed_backend else {}


def job_record(
    spec: EstimatorSpec,
    run_id: str,
    backend: str,
    python: str,
    environment: InJobEnvironment | None = None,
    tf_config_env_max: int = MAX_ARG_STRLEN,
) -> JobRecord:
    """job.json. `python` is the entry script's interpreter (the environment's, or the base one);
    `environment` says how to build the environment inside the job (environment_build: job);
    `tf_config_env_max` is the setting HPC_TF_TF_CONFIG_ENV_MAX, read once at submit time."""
    return JobRecord(
        run_id=run_id,
        experiment=spec.experiment,
        backend=backend,
        python=python,
        environment=environment,
        command=entry_argv(spec, python),
        metric_patterns=dict(spec.metric_patterns),
        env=user_environment(spec),
        default_env=default_environment(spec),
        ntasks=spec.ntasks,
        distributed_backend=spec.distributed_backend,
        parameter_server_count=spec.parameter_server_count if spec.distributed_backend == "ps" else 0,
        ps_mode=spec.ps_mode,
        evaluator=spec.evaluator,
        use_gpu=spec.use_gpu,
        max_run_duration_seconds=spec.max_run_duration_seconds,
        checkpointing=checkpointing(spec),
        tf_config_env_max=tf_config_env_max,
    )


def managed_server(job: JobRecord, slot: Slot) -> bool:
    """Whether this task of the job runs a TensorFlow server (managed 'ps' mode) instead of the entry script."""
    return managed_role(job.distributed_backend, job.ps_mode, slot.role)


def required_packages(backend: str | None, env: Mapping[str, str]) -> list[tuple[str, str]]:
    """(module, how to install it) that a job's interpreter needs: TensorFlow for distributed jobs,
    tf-keras when TF_USE_LEGACY_KERAS=1, Horovod for 'mpi'."""
    if backend is None:
        return []
    needed = [("tensorflow", "pip install 'hpc_tf[tf]'  (TensorFlow 2.18.1, CPU)")]
    if env.get("TF_USE_LEGACY_KERAS") == "1":
        needed.append(
            (
                "tf_keras",
                "pip install --no-deps tf-keras==2.18.0  (or set TF_USE_LEGACY_KERAS: '0' in environment_variables)",
            )
        )
    if backend == "mpi":
        needed.append(
            (
                "horovod",
                "scripts/install-horovod.sh  (builds Horovod 0.28.1 against the installed "
                "TensorFlow once, then caches the wheel)",
            )
        )
    return needed
