"""Pure derivation of what a job runs: the job script's plan for any Slurm job, the launch argv, the task's command.

Nothing here reads the environment or starts a process; the backends and the CLI pass in
what they looked up (interpreter path, chosen backend).
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, Mapping, Sequence

import msgspec

from .components import STEP_SEPARATOR, Component, components
from .envsize import MAX_ARG_STRLEN
from .records import Checkpointing, HetSteps, InJobEnvironment, JobRecord
from .slurm_options import Directive, requeue_options, slurm_options
from .spec import EstimatorSpec, ParamValue, SlurmOptions
from .tfcluster import Slot, managed_role

# Paths inside the run directory that the job script refers to. The script runs with the run
# directory as its working directory (sbatch --chdir / the local supervisor's cwd), so the script
# text never contains the run directory itself: `render` shows exactly what `submit` submits.
BATCH_LOG = "logs/slurm-%j.out"
LAUNCHER_LOG = "logs/launcher-%t.log"
# The in-job entry point, run by every task (srun, mpirun or the local launcher) in the run directory.
JOB_MODULE = "hpc_tf.job"
# srun's %t in a heterogeneous step is not the global rank (measured: het0-0, het1-2, het2-4, het2-5 for ranks 0-3):
# one file name per component cannot collide.
HET_LAUNCHER_LOG = "logs/launcher-het{group}-%t.log"
HET_STEPS_MODULE = "hpc_tf.job.hetsteps"  # one step per component: starts them, ends the job at the first failure


class ScriptPlan(msgspec.Struct, frozen=True):
    """Everything a job script template needs, already derived and typed."""

    backend: str
    # one allocation's #SBATCH options (its one component's block: the template's `directives`, as site templates read)
    directives: list[Directive] = []
    launch: list[str] = []
    package_root: str = ""
    modules: list[str] = []
    setup: list[str] = []
    # a heterogeneous job (roles:): (role, #SBATCH options) of each component; `directives` is empty
    components: list[tuple[str, list[Directive]]] = []


def slurm_plan(
    spec: EstimatorSpec,
    options: SlurmOptions,
    python: str,
    package_root: str,
    as_root: bool = False,
    het_steps: HetSteps = "one",
) -> ScriptPlan:
    """The Slurm job of any config: one #SBATCH block per component (one allocation has one), then `exec` of the
    launcher: srun (mpirun for Horovod) or, with roles, one srun step across the components (one step each with
    `het_steps="per_component"`, for a site with disable_hetjob_steps)."""
    comps = components(spec, options)
    blocks = [component_directives(spec, c) for c in comps]
    rest = (package_root, list(spec.modules), list(spec.setup))
    if spec.roles:
        launch = _per_component_argv if het_steps == "per_component" else _het_srun_argv
        roles = [(c.record.role, block) for c, block in zip(comps, blocks, strict=True)]
        return ScriptPlan("slurm", [], launch(spec, comps, python), *rest, roles)
    if spec.distributed_backend == "mpi" and spec.launcher == "mpirun":
        argv = mpirun_argv(spec, python, package_root, as_root)
    else:
        argv = srun_argv(spec, python)
    return ScriptPlan("slurm", blocks[0], argv, *rest)


def component_directives(spec: EstimatorSpec, c: Component) -> list[Directive]:
    """One component's #SBATCH block, in a stable order: its size, then its options. Component 0's also holds the
    whole job's (sbatch passes them on to the other components and reads output and mail from the first only):
    the job's name and log first, its requeue options after the size."""
    size = [("nodes", str(c.record.node_count)), task_count(c)]
    if c.record.index:
        return size + slurm_options(c.options, whole_job=False)
    whole_job: list[Directive] = [("job-name", spec.experiment), ("output", BATCH_LOG), ("open-mode", "append")]
    requeue = requeue_options(spec, c.options, batch_shell=spec.launcher == "mpirun")
    return whole_job + size + requeue + slurm_options(c.options, whole_job=True)


def task_count(c: Component) -> Directive:
    """How many tasks Slurm makes room for on a component's nodes: `ntasks-per-node`, or for a 'ps' job in one
    allocation that did not give process_count_per_node, `ntasks` spread over the nodes by Slurm itself (the seed's
    `node_count=2, worker_count=2, parameter_server_count=1` means 4 tasks on 2 nodes)."""
    if c.spread_ntasks is not None:
        return ("ntasks", str(c.spread_ntasks))
    return ("ntasks-per-node", str(c.record.tasks_per_node))


def executor_parameters(spec: EstimatorSpec, options: SlurmOptions) -> dict[str, Any]:
    """submitit `update_parameters` keywords giving one allocation's #SBATCH options, as its job script has them
    (but the job's name and log, which submitit sets itself; the warning signal goes to the tasks, submitit's srun).

    Everything but the layout goes through submitit's `additional_parameters`, whose keys override its
    own defaults (its `time=5`) and whose `True` is a bare flag. submitit quotes values for a shell,
    which sbatch does not parse that way: values that would need quoting are refused by the caller.
    """
    comps = components(spec, options)
    if len(comps) != 1:  # runs.executor refuses roles first, with the config's words
        raise ValueError("an executor runs in one allocation: a config with roles has several components")
    (c,) = comps
    extra = [task_count(c), *requeue_options(spec, c.options), *slurm_options(c.options, whole_job=True)]
    params: dict[str, Any] = {"nodes": c.record.node_count, "job_name": spec.experiment}
    return {**params, "additional_parameters": {n.replace("-", "_"): True if v is None else v for n, v in extra}}


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


def _component_argv(spec: EstimatorSpec, c: Component, python: str) -> list[str]:
    argv = [f"--het-group={c.record.index}", f"--ntasks={c.record.ntasks}", "--mpi=none"]
    argv += [f"--output={HET_LAUNCHER_LOG.format(group=c.record.index)}", *spec.launcher_args]
    return [*argv, python, "-u", "-m", JOB_MODULE, "."]


def _het_srun_argv(spec: EstimatorSpec, comps: Sequence[Component], python: str) -> list[str]:
    """One step over every component: `srun <step options> --het-group=0 … <runtime> : --het-group=1 … : …`.

    `--mpi=none`: the TensorFlow servers talk gRPC, and PMIx across components is a known failure (openpmix #3098).
    `--unbuffered` and `--kill-on-bad-exit` are passed on to the later components by srun itself; the task count,
    the MPI plugin and the log are reset for each component, so each gets its own (launcher_args too)."""
    argv = ["srun", "--unbuffered", "--kill-on-bad-exit=1"]
    for c in comps:
        argv += [STEP_SEPARATOR] if c.record.index else []
        argv += _component_argv(spec, c, python)
    return argv


def _per_component_argv(spec: EstimatorSpec, comps: Sequence[Component], python: str) -> list[str]:
    """One step per component, under `hpc_tf.job.hetsteps` (the batch script's process): `python -m
    hpc_tf.job.hetsteps srun … --het-group=0 … : srun … --het-group=1 … : …`."""
    argv = [python, "-u", "-m", HET_STEPS_MODULE]
    for c in comps:
        argv += [STEP_SEPARATOR] if c.record.index else []
        argv += ["srun", "--unbuffered", "--kill-on-bad-exit=1", *_component_argv(spec, c, python)]
    return argv


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


def checkpointing(spec: EstimatorSpec) -> Checkpointing:
    """job.json's part about the time limit: what the in-job runtime needs to checkpoint and requeue."""
    return Checkpointing(
        checkpoint_dir=spec.checkpoint_dir,
        requeue_on=tuple(spec.requeue_on),
        max_restarts=spec.max_restarts,
        signal=spec.checkpoint_signal,
        lead_seconds=spec.checkpoint_lead_seconds,
        every=spec.checkpoint_every,
    )


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
