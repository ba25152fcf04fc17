"""Pure derivation of what a job runs: sbatch directives, the launch argv and the task's command.

Nothing here reads the environment or starts a process; the backends and the CLI pass in
what they looked up (interpreter path, chosen backend).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath

from .spec import EstimatorSpec, env_text, script_argv
from .targets import Target

# Paths inside the run directory that the job script refers to. The script runs with the run
# directory as its working directory (sbatch --chdir / the local supervisor's cwd), so the script
# text never contains the run directory itself: `render` shows exactly what `submit` submits.
SUBMITIT_FOLDER = ".submitit"
BATCH_LOG = "logs/slurm-%j.out"
LAUNCHER_LOG = "logs/launcher-%t.log"


@dataclass(frozen=True)
class ScriptPlan:
    """Everything a job script template needs, already derived and typed."""

    backend: str
    directives: list[tuple[str, str | None]] = field(default_factory=list)
    launch: list[str] = field(default_factory=list)
    ntasks: int = 1
    package_root: str = ""
    modules: list[str] = field(default_factory=list)
    setup: list[str] = field(default_factory=list)


def slurm_time(seconds: int) -> str:
    """Seconds → Slurm's D-HH:MM:SS (Slurm rounds up to whole minutes itself)."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"


def gpus_per_node(spec: EstimatorSpec, target: Target) -> int:
    """GPUs a job asks for per node: the target's gpus_per_node, else one per process; 0 without use_gpu."""
    return (target.options.gpus_per_node or spec.process_count_per_node) if spec.use_gpu else 0


def sbatch_directives(spec: EstimatorSpec, target: Target) -> list[tuple[str, str | None]]:
    """The #SBATCH options of a job, in a stable order: layout first, then the target's options."""
    opts = target.options
    out: list[tuple[str, str | None]] = [
        ("job-name", spec.experiment),
        ("output", BATCH_LOG),
        ("open-mode", "append"),
        ("nodes", str(spec.node_count)),
        ("ntasks-per-node", str(spec.process_count_per_node)),
    ]
    if spec.max_run_duration_seconds is not None:
        out.append(("time", slurm_time(spec.max_run_duration_seconds)))
    elif opts.time is not None:
        out.append(("time", str(opts.time)))
    for name in ("partition", "account", "qos", "cpus_per_task", "mem", "constraint", "exclude", "reservation"):
        value = getattr(opts, name)
        if value is not None:
            out.append((name.replace("_", "-"), str(value)))
    gpus = gpus_per_node(spec, target)
    if gpus:
        out.append(("gpus-per-node", str(gpus)))
    for name, value in opts.additional_parameters.items():
        if value is False:
            continue
        out.append((name.replace("_", "-"), None if value is None or value is True else str(value)))
    return out


def slurm_plan(spec: EstimatorSpec, target: Target, python: str, package_root: str, as_root: bool = False) -> ScriptPlan:
    """The Slurm job: #SBATCH header, then `exec` of the launcher (srun, or mpirun for Horovod)."""
    if spec.distributed_backend == "mpi" and spec.launcher == "mpirun":
        launch = mpirun_argv(spec, python, package_root, as_root)
    else:
        launch = srun_argv(spec, python)
    return ScriptPlan("slurm", sbatch_directives(spec, target), launch, spec.ntasks, package_root,
                      list(spec.modules), list(spec.setup))


def srun_argv(spec: EstimatorSpec, python: str) -> list[str]:
    """srun starts submitit's in-job entry on every task; a task that fails ends the step."""
    argv = ["srun", "--unbuffered", "--kill-on-bad-exit=1", f"--ntasks={spec.ntasks}", f"--output={LAUNCHER_LOG}"]
    if spec.distributed_backend == "mpi":
        argv.append(f"--mpi={spec.mpi_plugin}")
    return argv + list(spec.launcher_args) + [python, "-u", "-m", "submitit.core._submit", SUBMITIT_FOLDER]


# Forwarded to every rank by name (Horovod's practice: values never pass through quoting).
MPIRUN_FORWARD = ("PATH", "HPC_TF_BACKEND", "PYTHONUNBUFFERED")


def mpirun_argv(spec: EstimatorSpec, python: str, package_root: str, as_root: bool = False) -> list[str]:
    """Open MPI's mpirun inside the allocation (it starts its daemons through Slurm, no SSH).

    Flags from Horovod's guide: no binding (TensorFlow manages its threads), ranks mapped by
    slot (Slurm's tasks per node), the ob1 point-to-point layer without openib.
    """
    argv = ["mpirun", "-np", str(spec.ntasks), "--bind-to", "none", "--map-by", "slot",
            "--mca", "pml", "ob1", "--mca", "btl", "^openib"]
    if as_root:  # the job runs as its submitter; Open MPI refuses root unless told
        argv.append("--allow-run-as-root")
    for name in MPIRUN_FORWARD + (("PYTHONPATH",) if package_root else ()):
        argv += ["-x", name]
    return argv + list(spec.launcher_args) + [python, "-u", "-m", "hpc_tf.runtime", "."]


def local_plan(spec: EstimatorSpec, python: str, package_root: str, as_root: bool = False) -> ScriptPlan:
    """The local job: the same in-job runtime on this machine, one process per task.

    'mpi' runs under a local mpirun (Horovod over MPI on one host); 'ps' and 'multiworker' under
    hpc_tf's task launcher, which gives each task its rank and ends the job when one fails.
    """
    if spec.distributed_backend == "mpi":
        launch = mpirun_argv(spec, python, package_root, as_root)
        launch.insert(launch.index(python), "--oversubscribe")
    elif spec.distributed_backend:
        launch = [python, "-u", "-m", "hpc_tf.backends.local_tasks", ".", str(spec.ntasks)]
    else:
        launch = [python, "-u", "-m", "hpc_tf.runtime", "."]
    return ScriptPlan("local", [], launch, spec.ntasks, package_root, list(spec.modules), list(spec.setup))


def task_command(spec: EstimatorSpec, python: str) -> list[str]:
    """What each task runs, relative to the snapshot of source_directory."""
    return [python, "-u", str(PurePath(spec.entry_script)), *script_argv(spec.script_params)]


def user_environment(spec: EstimatorSpec) -> dict[str, str]:
    """The user's environment_variables as text, exactly as the task will see them."""
    return {name: env_text(value) for name, value in spec.environment_variables.items()}


def default_environment(spec: EstimatorSpec) -> dict[str, str]:
    """hpc_tf's defaults for the entry script (environment_variables override them).

    Distributed jobs use tf-keras (`TF_USE_LEGACY_KERAS=1`): with Keras 3, Horovod's Keras API and
    `model.fit` under ParameterServerStrategy and MultiWorkerMirroredStrategy fail, while tf-keras
    runs all of them. Set TF_USE_LEGACY_KERAS to "0" in environment_variables to use Keras 3.
    """
    return {"TF_USE_LEGACY_KERAS": "1"} if spec.distributed_backend else {}


def job_record(spec: EstimatorSpec, run_id: str, backend: str, python: str,
               environment: dict[str, object] | None = None) -> dict[str, object]:
    """job.json: everything the in-job runtime needs, so no value passes through the script.

    `python` is the interpreter of the entry script (the environment's, or the base one);
    `environment` says how to build the environment inside the job (environment_build: job).
    """
    return {
        "run_id": run_id, "experiment": spec.experiment, "backend": backend, "python": python,
        "environment": environment, "command": task_command(spec, python), "metric_patterns": spec.metric_patterns, "env": user_environment(spec), "default_env": default_environment(spec),
        "ntasks": spec.ntasks, "distributed_backend": spec.distributed_backend,
        "parameter_server_count": spec.parameter_server_count if spec.distributed_backend == "ps" else 0,
        "ps_mode": spec.ps_mode, "evaluator": spec.evaluator, "use_gpu": spec.use_gpu, "max_run_duration_seconds": spec.max_run_duration_seconds,
    }
