"""One task of a job: set it up (role, TF_CONFIG, GPUs, packages), run it, record what happened.

Given to the entry script, besides environment_variables: HPC_TF_RUN_DIR, HPC_TF_RUN_ID,
HPC_TF_OUTPUTS_DIR, HPC_TF_RANK, HPC_TF_TENSORBOARD_DIR, and TF_CONFIG / CUDA_VISIBLE_DEVICES where
they apply (a TF_CONFIG or a trial's HPC_TF_HPARAMS too long for the environment goes through a file,
core.envsize). Every task, MPI ranks included, runs the entry script as a child (an MPI rank's child
inherits the launcher's PMIx/Open MPI environment and is the MPI process), so each task's exit code is
recorded. What a task's end means for the job is decided in `core.lifecycle`.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Mapping

import msgspec

from ..core import transitions
from ..core.envsize import FILE_VARIABLES, TF_CONFIG_FILE, oversized, tf_config_in_env, too_long_text
from ..core.lifecycle import REQUEUE_EXIT_CODE, task_end
from ..core.plan import managed_server, required_packages
from ..core.records import FirstFailure, JobRecord, TaskRecord
from ..core.tfcluster import Slot, bind_gpus, tf_config
from ..envs.interpreters import missing_text
from ..errors import HpcTfError
from ..rundir import RunDir, utc_now, write_atomic
from ..sweeps.trial import open_trial, trial_ended, trial_environment
from .context import HET_GROUP, TaskContext, TaskSetupError
from .placement import global_context, global_rank, job_slots, my_slot
from .requeue import Requeuer, checkpoint_environment, ignore_in_child, wait_for_other_tasks
from .supervise import supervise
from .watch import stop_condition

TFSERVER = Path(__file__).with_name("tfserver.py")
CHILD_SITE = Path(__file__).with_name("child_site")  # its sitecustomize: TF_CONFIG from the file, the keras alias


def task_environment(
    job: JobRecord, slots: list[Slot], slot: Slot, env: Mapping[str, str], run: RunDir
) -> dict[str, str]:
    """What this task adds to the entry script's environment: TF_CONFIG (or its file's path) and GPU binding."""
    out: dict[str, str] = {}
    if slots:
        text = json.dumps(tf_config(slots, slot.rank))
        if tf_config_in_env(text, job.tf_config_env_max):
            out["TF_CONFIG"] = text
        else:
            run.tasks_dir.mkdir(exist_ok=True)
            write_atomic(run.tf_config_file(slot.rank), text, durable=False)  # the script's input, not a record
            out[TF_CONFIG_FILE] = str(run.tf_config_file(slot.rank))
    try:
        gpus = bind_gpus(env.get("CUDA_VISIBLE_DEVICES"), slot, job.use_gpu)
    except ValueError as exc:
        raise TaskSetupError(str(exc)) from None
    if gpus is not None:
        out["CUDA_VISIBLE_DEVICES"] = gpus
    return out


def child_environment(env: Mapping[str, str], job: JobRecord, run: RunDir, rank: int) -> dict[str, str]:
    """The entry script's environment: the job's, hpc_tf's defaults, the user's environment_variables, hpc_tf's own."""
    out = {**env, **job.default_env, **job.env}
    for name in FILE_VARIABLES:  # only this task's own (task_environment, trial_environment), never one inherited
        out.pop(name, None)
    out.update(
        HPC_TF_RUN_DIR=str(run.path),
        HPC_TF_RUN_ID=run.run_id,
        HPC_TF_OUTPUTS_DIR=str(run.rank_outputs(rank)),
        HPC_TF_RANK=str(rank),
        HPC_TF_TENSORBOARD_DIR=str(run.tensorboard),
        PYTHONUNBUFFERED="1",
    )
    return out


def with_child_site(env: dict[str, str]) -> dict[str, str]:
    """The task's environment with hpc_tf's sitecustomize first on PYTHONPATH where the script needs it: TF_CONFIG or
    HPC_TF_HPARAMS comes through its file, or `import keras` is to give tf-keras. A value from a file replaces any
    other (one inherited from the job's environment)."""
    through_file = [name for name in FILE_VARIABLES if name in env]
    for name in through_file:
        env.pop(FILE_VARIABLES[name], None)
    alias = env.get("HPC_TF_KERAS_ALIAS") == "1" and env.get("TF_USE_LEGACY_KERAS") == "1"
    if alias or through_file:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(CHILD_SITE), env.get("PYTHONPATH", "")) if p)
    return env


def check_env_sizes(env: Mapping[str, str], job: JobRecord) -> None:
    """Every variable fits one environment string: else no program could be started with them (core.envsize)."""
    for name, size in oversized(env):
        origin = (
            f"environment_variables.{name}"
            if name in job.env
            else ("hpc_tf's own defaults" if name in job.default_env else "the job's environment (submit side, Slurm)")
        )
        raise TaskSetupError(too_long_text(name, size, origin))


def task_argv(job: JobRecord, slot: Slot) -> list[str]:
    """The job's interpreter runs either the entry script or hpc_tf's TensorFlow server (a plain script
    file, so an environment without hpc_tf in it can run it)."""
    if managed_server(job, slot):
        return [job.python or sys.executable, "-u", str(TFSERVER)]
    return list(job.command)


def check_packages(job: JobRecord, env: Mapping[str, str]) -> None:
    """A distributed job without TensorFlow (or Horovod for 'mpi') fails here, saying how to install it."""
    try:
        missing = missing_text(job.python or sys.executable, required_packages(job.distributed_backend, env))
    except HpcTfError as exc:
        raise TaskSetupError(str(exc)) from None
    if missing:
        raise TaskSetupError(missing)


def run_task(run_dir: str | Path) -> int:
    """Run this task's share of the job in the snapshot; return its exit code."""
    run = RunDir(run_dir)
    job = run.read_job()
    hostname = socket.gethostname()
    try:
        ctx = TaskContext.from_env(os.environ, hostname)
    except TaskSetupError as exc:
        return _setup_failed(run, None, hostname, str(exc), job)
    try:
        ctx = global_context(job, ctx)
        if job.environment is not None:
            _environment_in_job(run, job, ctx)
        slots = job_slots(job, ctx)
        slot = my_slot(ctx, slots, job.components)
        env = child_environment(os.environ, job, run, ctx.rank)
        env.update(task_environment(job, slots, slot, env, run))
        env.update(trial_environment(job, run))
        env.update(checkpoint_environment(run, job, ctx.restart_count))
        env = with_child_site(env)
        check_env_sizes(env, job)
        check_packages(job, env)
    except TaskSetupError as exc:
        return _setup_failed(run, ctx, hostname, str(exc), job)
    record = TaskRecord(
        rank=slot.rank,
        role=slot.role,
        index=slot.index,
        host=ctx.hostname,
        port=slot.port,
        local_rank=slot.local_rank,
        cuda_visible_devices=env.get("CUDA_VISIBLE_DEVICES"),
        start_time=utc_now(),
        pid=os.getpid(),
        tf_config="file" if TF_CONFIG_FILE in env else ("env" if slots else ""),
    )

    def started(pid: int) -> None:
        """The records of a start are written once the entry script runs: they are not on its way."""
        if ctx.rank == 0:
            run.transition(lambda s: transitions.started(s, record.start_time or "", ctx.job_nodes, ctx.restart_count))
        run.write_task(msgspec.structs.replace(record, child_pid=pid))

    under_mpirun = "OMPI_COMM_WORLD_RANK" in os.environ
    stop_when = stop_condition(run, job, slot.rank, ctx.restart_count)
    requeuer = Requeuer(run, job, ctx, os.environ) if slot.rank == 0 and job.checkpointing.requeue_on else None
    refusal = requeuer.gate() if requeuer is not None else None
    if refusal is not None:  # Slurm restarted the job, but requeue_on or max_restarts say this run ends here
        return _not_restarted(run, refusal)
    code, stopped, signals = supervise(
        run,
        slot.rank,
        task_argv(job, slot),
        env,
        stop_when,
        started,
        under_mpirun,
        requeuer.on_signal if requeuer else None,
        ignore_in_child(job),
    )
    if TF_CONFIG_FILE in env:  # every task is in each task's file (~19 bytes): 1.2 GB for 8,000 tasks; not kept
        Path(env[TF_CONFIG_FILE]).unlink(missing_ok=True)
    run.write_task(
        msgspec.structs.replace(record, end_time=utc_now(), exit_code=code, stopped_after_chief=stopped, child_pid=None)
    )
    return _record_end(run, job, slot, ctx, code, stopped, signals, requeuer)


def _not_restarted(run: RunDir, refusal: str) -> int:
    """A restart hpc_tf refuses (the previous attempt's end and the reason are recorded): the script is not run,
    so it is no attempt; the job ends with REQUEUE_EXIT_CODE and Slurm's final state."""
    run.transition(lambda s: transitions.lead_exited(s, REQUEUE_EXIT_CODE, utc_now(), []))
    run.logs.mkdir(exist_ok=True)
    with open(run.rank_err(0), "a", encoding="utf-8") as err:
        err.write(f"hpc_tf: {refusal}\n")
    return REQUEUE_EXIT_CODE


def _record_end(
    run: RunDir,
    job: JobRecord,
    slot: Slot,
    ctx: TaskContext,
    code: int,
    stopped: bool,
    signals: list[str],
    requeuer: Requeuer | None = None,
) -> int:
    """Record what the task's end means (core.lifecycle); return the task's exit code for the launcher.
    A chief that saved for a requeue first tells the servers to stop, and asks Slurm for the next attempt once they
    have (a requeue kills whatever still runs)."""
    requested = run.checkpoint_request(ctx.restart_count).exists()
    end = task_end(slot.rank, job.distributed_backend, managed_server(job, slot), code, stopped, signals, requested)
    if end.signal_lead_exit:
        run.tasks_dir.mkdir(exist_ok=True)
        write_atomic(run.lead_exit(ctx.restart_count), f"{code}\n")
    others = (lambda: wait_for_other_tasks(run, ctx.ntasks)) if end.signal_lead_exit else None
    requeued = requeuer is not None and requeuer.after_exit(code, others)
    if end.lead:
        # The state stays RUNNING until the scheduler (or the local supervisor) confirms the end:
        # status.json never shows a COMPLETED that Slurm could still turn into FAILED or TIMEOUT.
        run.transition(lambda s: transitions.lead_exited(s, end.exit_code, utc_now(), signals))
    if end.first_failure:
        _first_failure(run, slot.rank, slot.role, slot.index, ctx.hostname, end.exit_code, end.note)
    if end.lead and job.trial is not None and not requeued:  # a requeued trial's end comes with its last attempt
        trial_ended(run, job, end.exit_code)
    return end.exit_code


def _first_failure(run: RunDir, rank: int, role: str, index: int, host: str, code: int, note: str = "") -> None:
    failure = FirstFailure(rank=rank, role=role, index=index, host=host, exit_code=code, time=utc_now(), note=note)
    run.transition(lambda s: transitions.failed_first(s, failure))


def _environment_in_job(run: RunDir, job: JobRecord, ctx: TaskContext) -> None:
    """environment_build: job — every task asks for the environment; the first builds it under the
    cache's lock, the others wait for it and reuse it."""
    from ..envs.build import EnvBuildError, ensure

    assert job.environment is not None
    try:
        record = ensure(Path(job.environment.root), job.environment.request, tool=job.environment.tool)
    except EnvBuildError as exc:
        raise TaskSetupError(str(exc)) from None
    if ctx.rank == 0:
        write_atomic(run.environment_json, json.dumps(record, indent=2) + "\n")


def _setup_failed(run: RunDir, ctx: TaskContext | None, hostname: str, message: str, job: JobRecord) -> int:
    if ctx is not None:
        rank = global_rank(job, ctx.rank, ctx.het_group)
    else:  # the environment could not be read: SLURM_PROCID, and the component hetsteps gave
        group = os.environ.get(HET_GROUP, "")
        procid = int(os.environ.get("SLURM_PROCID") or os.environ.get("HPC_TF_TASK_RANK") or 0)
        rank = global_rank(job, procid, int(group) if group.isdigit() else None)
    run.logs.mkdir(exist_ok=True)
    with open(run.rank_err(rank), "a", encoding="utf-8") as err:
        err.write(f"hpc_tf: task {rank} cannot start: {message}\n")
    _first_failure(run, rank, "task", rank, hostname, 2, message)
    if rank == 0:
        run.transition(lambda s: transitions.setup_failed(s, message, utc_now()))
    return 2


def main(argv: list[str] | None = None) -> int:
    """`python -m hpc_tf.job RUN_DIR`, or for a sweep's array task `SWEEP_DIR --trial-offset N`."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 3 and args[1] == "--trial-offset" and args[2].isdigit():
        try:
            trial = open_trial(Path(args[0]).absolute(), int(args[2]), os.environ)
        except (TaskSetupError, HpcTfError, OSError) as exc:
            print(f"hpc_tf: this array task cannot start its trial: {exc}", file=sys.stderr)
            return 2
        return 0 if trial is None else run_task(trial.path)
    if len(args) != 1:
        print("usage: python -m hpc_tf.job RUN_DIR  |  SWEEP_DIR --trial-offset N", file=sys.stderr)
        return 2
    return run_task(Path(args[0]).absolute())
