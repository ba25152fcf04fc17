"""The in-job entry point: sets up one task (role, TF_CONFIG, GPUs), runs it, and records what happened.

On Slurm it is called on every task through submitit's pickled call (`slurm_task`); under mpirun
and on the local backend as `python -m hpc_tf.runtime RUN_DIR`. It never imports TensorFlow.

Lifecycle (distributed 'ps' and 'multiworker'): rank 0 (the chief) is the lead. When its entry
script ends, the runtime writes `tasks/lead-exit` and every other task stops its process and exits
0, so the job ends with the chief's exit code; a task whose process dies first records itself as
`first_failure` in status.json and exits non-zero, and `srun --kill-on-bad-exit` ends the job.
'mpi' ranks `exec` the entry script: the rank is the MPI process itself.

Environment variables read: SLURM_PROCID, SLURM_LOCALID, SLURM_STEP_NUM_TASKS, SLURM_STEP_NODELIST,
SLURM_STEP_TASKS_PER_NODE, SLURM_JOB_NODELIST, SLURM_JOB_ID, SLURM_STEP_RESV_PORTS,
CUDA_VISIBLE_DEVICES; under mpirun OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_LOCAL_RANK,
OMPI_COMM_WORLD_SIZE; from the local launcher HPC_TF_TASK_RANK, HPC_TF_NTASKS, HPC_TF_JOB_ID.
Given to the entry script, besides environment_variables: HPC_TF_RUN_DIR, HPC_TF_RUN_ID,
HPC_TF_OUTPUTS_DIR, HPC_TF_RANK, and TF_CONFIG / CUDA_VISIBLE_DEVICES where they apply.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

from .hostlist import expand, expand_tasks_per_node
from .rundir import RunDir, utc_now, write_atomic
from .tfconfig import Slot, bind_gpus, layout, tf_config

STOP_GRACE_SECONDS = 5.0
POLL_SECONDS = 0.25


class TaskSetupError(Exception):
    """This task cannot start (missing package, wrong host, layout mismatch); the message says why."""


class TaskContext:
    """Where this task stands in the job, read once from the launcher's environment."""

    def __init__(self, env: Mapping[str, str], hostname: str) -> None:
        self.hostname = hostname
        if "OMPI_COMM_WORLD_RANK" in env:  # mpirun: SLURM_PROCID belongs to Open MPI's daemon
            self.rank = int(env["OMPI_COMM_WORLD_RANK"])
            self.local_rank = int(env.get("OMPI_COMM_WORLD_LOCAL_RANK", "0"))
            self.ntasks = int(env.get("OMPI_COMM_WORLD_SIZE", "1"))
        elif "HPC_TF_TASK_RANK" in env:  # the local launcher
            self.rank = int(env["HPC_TF_TASK_RANK"])
            self.local_rank = self.rank
            self.ntasks = int(env.get("HPC_TF_NTASKS", "1"))
        else:
            self.rank = int(env.get("SLURM_PROCID", "0"))
            self.local_rank = int(env.get("SLURM_LOCALID", "0"))
            self.ntasks = int(env.get("SLURM_STEP_NUM_TASKS") or env.get("SLURM_NTASKS") or "1")
        self.local = "HPC_TF_TASK_RANK" in env or "SLURM_JOB_ID" not in env
        nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or ""
        self.nodes = expand(nodelist) if nodelist and not self.local else ["localhost"]
        per_node = env.get("SLURM_STEP_TASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE")
        self.tasks_per_node = expand_tasks_per_node(per_node) if per_node and not self.local else [self.ntasks]
        self.job_nodes = expand(env["SLURM_JOB_NODELIST"]) if env.get("SLURM_JOB_NODELIST") else [hostname]
        self.job_id = int(env.get("SLURM_JOB_ID") or env.get("HPC_TF_JOB_ID") or "0")
        self.resv_ports = env.get("SLURM_STEP_RESV_PORTS") or None


def job_slots(job: Mapping[str, Any], ctx: TaskContext) -> list[Slot]:
    """Every task's slot, as this task sees the step (each task derives the same list)."""
    backend = job.get("distributed_backend")
    if backend in (None, "mpi"):
        return []
    return layout(backend, ctx.nodes, ctx.tasks_per_node, job.get("parameter_server_count", 0), ctx.job_id,
                  ctx.resv_ports, bool(job.get("evaluator")))


def my_slot(job: Mapping[str, Any], ctx: TaskContext, slots: list[Slot]) -> Slot:
    """This task's slot; checks that the launcher put it where the layout says and that its port is free."""
    if not slots:  # one process, or an MPI rank: no TF cluster to place
        return Slot(ctx.rank, ctx.hostname, ctx.local_rank, "worker", ctx.rank)
    if len(slots) != ctx.ntasks or ctx.rank >= len(slots):
        raise TaskSetupError(f"the step has {ctx.ntasks} tasks but its node list {ctx.nodes} and tasks per node "
                             f"{ctx.tasks_per_node} give {len(slots)}: was the job started with a different layout?")
    slot = slots[ctx.rank]
    if not ctx.local and not _same_host(ctx.hostname, slot.node):
        raise TaskSetupError(f"rank {ctx.rank} runs on {ctx.hostname!r} but Slurm's block layout puts it on {slot.node!r}: "
                             f"TF_CONFIG would be wrong (was --distribution changed?)")
    if slot.port is not None and not port_is_free(slot.port):
        raise TaskSetupError(f"port {slot.port} (rank {slot.rank}, {slot.role} {slot.index}) is already in use on "
                             f"{ctx.hostname}: another program holds this job's port block; resubmit, or ask the site "
                             f"to reserve ports for steps (MpiParams=ports=..., SLURM_STEP_RESV_PORTS)")
    return slot


def port_is_free(port: int) -> bool:
    """Whether a TCP port can be bound on all interfaces here (TIME_WAIT leftovers don't count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("", port))
        except OSError:
            return False
    return True


def _same_host(hostname: str, node: str) -> bool:
    return hostname == node or hostname.split(".")[0] == node.split(".")[0]


def task_environment(job: Mapping[str, Any], slots: list[Slot], slot: Slot, env: Mapping[str, str]) -> dict[str, str]:
    """What this task adds to the entry script's environment: TF_CONFIG and GPU binding."""
    out: dict[str, str] = {}
    if slots:
        out["TF_CONFIG"] = json.dumps(tf_config(slots, slot.rank))
    try:
        gpus = bind_gpus(env.get("CUDA_VISIBLE_DEVICES"), slot, bool(job.get("use_gpu")))
    except ValueError as exc:
        raise TaskSetupError(str(exc)) from None
    if gpus is not None:
        out["CUDA_VISIBLE_DEVICES"] = gpus
    return out


def missing_modules(python: str, names: list[str]) -> list[str]:
    """Which of `names` the interpreter `python` cannot import (looked up, never imported)."""
    import importlib.util

    if os.path.realpath(python) == os.path.realpath(sys.executable):
        return [name for name in names if importlib.util.find_spec(name) is None]
    code = "import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))"
    proc = subprocess.run([python, "-c", code, *names], capture_output=True, text=True)
    if proc.returncode != 0:
        raise TaskSetupError(f"cannot run the job's Python {python}: {proc.stderr.strip()[-300:]}")
    return proc.stdout.split()


def check_packages(job: Mapping[str, Any], env: Mapping[str, str]) -> None:
    """A distributed job without TensorFlow (or Horovod for 'mpi') fails here, saying how to install it."""
    backend = job.get("distributed_backend")
    if backend is None:
        return
    needed = [("tensorflow", "pip install 'hpc_tf[tf]'  (TensorFlow 2.18.1, CPU)")]
    if env.get("TF_USE_LEGACY_KERAS") == "1":
        needed.append(("tf_keras", "pip install --no-deps tf-keras==2.18.0  (or set TF_USE_LEGACY_KERAS: '0' in environment_variables)"))
    if backend == "mpi":
        needed.append(("horovod", "scripts/install-horovod.sh  (builds Horovod 0.28.1 against the installed TensorFlow once, then caches the wheel)"))
    python = job.get("python") or sys.executable
    absent = set(missing_modules(python, [name for name, _ in needed]))
    missing = [f"{name} (install: {how})" for name, how in needed if name in absent]
    if missing:
        raise TaskSetupError(f"missing in {python}: " + "; ".join(missing))


def child_environment(env: Mapping[str, str], job: Mapping[str, Any], run: RunDir, rank: int) -> dict[str, str]:
    """The entry script's environment: the job's, hpc_tf's defaults, the user's environment_variables, hpc_tf's own."""
    out = dict(env)
    out.update(job.get("default_env", {}))
    out.update(job.get("env", {}))
    out.update(HPC_TF_RUN_DIR=str(run.path), HPC_TF_RUN_ID=run.run_id, HPC_TF_OUTPUTS_DIR=str(outputs_dir(run, rank)),
               HPC_TF_RANK=str(rank), HPC_TF_TENSORBOARD_DIR=str(run.path / "tensorboard"), PYTHONUNBUFFERED="1")
    return out


def outputs_dir(run: RunDir, rank: int) -> Path:
    """Where a rank's ./outputs lands: rank 0's at the top of outputs/, rank N's in outputs/rank-N/."""
    return run.outputs if rank == 0 else run.outputs / f"rank-{rank}"


def working_dir(run: RunDir, rank: int) -> Path:
    """Rank 0 runs in the snapshot (its ./outputs links to the run's outputs/). Other ranks run in
    `work/rank-N/`: links to every entry of the snapshot, and an ./outputs of their own, so ranks
    that write the same file names don't overwrite each other's."""
    if rank == 0:
        return run.snapshot
    work = run.path / "work" / f"rank-{rank}"
    if not work.is_dir():
        tmp = work.with_name(f".rank-{rank}.tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        for entry in run.snapshot.iterdir():
            if entry.name != "outputs" and not (tmp / entry.name).exists():
                (tmp / entry.name).symlink_to(entry)
        outputs = outputs_dir(run, rank)
        outputs.mkdir(parents=True, exist_ok=True)
        if not (tmp / "outputs").exists():
            (tmp / "outputs").symlink_to(outputs)
        os.replace(tmp, work)
    return work


def shell_exit_code(returncode: int) -> int:
    """A child killed by signal N is reported the way shells and Slurm do: 128 + N."""
    return returncode if returncode >= 0 else 128 - returncode


def managed_server(job: Mapping[str, Any], slot: Slot) -> bool:
    """In managed 'ps' mode the ps and worker tasks run TensorFlow servers, not the entry script."""
    return (job.get("distributed_backend") == "ps" and job.get("ps_mode", "managed") == "managed"
            and slot.role in ("ps", "worker"))


def task_command(job: Mapping[str, Any], slot: Slot) -> list[str]:
    """The job's interpreter runs either the entry script or hpc_tf's TensorFlow server (a plain script
    file, so an environment without hpc_tf in it can run it)."""
    if managed_server(job, slot):
        return [job.get("python") or sys.executable, "-u", str(Path(__file__).with_name("tfserver.py"))]
    return list(job["command"])


def run_task(run_dir: str | Path) -> int:
    """Run this task's share of the job in the snapshot; return its exit code."""
    run = RunDir(run_dir)
    job = run.read_job()
    ctx = TaskContext(os.environ, socket.gethostname())
    if ctx.rank == 0:
        run.update_status(state="RUNNING", start_time=utc_now(), nodes=ctx.job_nodes)
    try:
        if job.get("environment"):
            _environment_in_job(run, job, ctx)
        slots = job_slots(job, ctx)
        slot = my_slot(job, ctx, slots)
        env = child_environment(os.environ, job, run, ctx.rank)
        env.update(task_environment(job, slots, slot, env))
        check_packages(job, env)
    except TaskSetupError as exc:
        return _setup_failed(run, ctx, str(exc))
    record = {"rank": slot.rank, "role": slot.role, "index": slot.index, "host": ctx.hostname, "port": slot.port,
              "local_rank": slot.local_rank, "cuda_visible_devices": env.get("CUDA_VISIBLE_DEVICES"),
              "start_time": utc_now(), "pid": os.getpid()}
    _write_task(run, slot.rank, record)
    if job.get("distributed_backend") == "mpi":
        _exec(run, slot.rank, task_command(job, slot), env)

    def started(pid: int) -> None:
        record["child_pid"] = pid
        _write_task(run, slot.rank, record)

    code, stopped, signals = _supervise(run, slot, task_command(job, slot), env, started)
    record.update(end_time=utc_now(), exit_code=code, stopped_after_chief=stopped)
    _write_task(run, slot.rank, record)
    return _finish(run, job, slot, ctx, code, stopped, signals)


def _supervise(run: RunDir, slot: Slot, command: list[str], env: dict[str, str],
               started: Callable[[int], None]) -> tuple[int, bool, list[str]]:
    """Run the task's process; a non-lead task stops it once the lead (rank 0) has ended."""
    received: list[str] = []

    def note_signal(signum: int, _frame: object) -> None:
        # The scheduler signals the whole process group, so the child gets it too; the runtime
        # only records it and stays alive to write the final status.
        received.append(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, note_signal)
    lead_exit = run.path / "tasks" / "lead-exit"
    with open(run.rank_out(slot.rank), "ab") as out, open(run.rank_err(slot.rank), "ab") as err:
        try:
            proc = subprocess.Popen(command, cwd=working_dir(run, slot.rank), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=err, env=env)
        except OSError as exc:
            err.write(f"hpc_tf: cannot start {command[0]}: {exc}\n".encode())
            return 127, False, received
        started(proc.pid)
        stopped = False
        lead = slot.rank == 0
        while True:
            try:
                returncode = proc.wait(timeout=None if lead else POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                if not stopped and lead_exit.exists():
                    stopped = True
                    _stop(proc)
    return shell_exit_code(returncode), stopped, received


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()


def _finish(run: RunDir, job: Mapping[str, Any], slot: Slot, ctx: TaskContext, code: int, stopped: bool, signals: list[str]) -> int:
    """Record the outcome; return the task's exit code for the launcher."""
    if slot.rank == 0:
        if job.get("distributed_backend") in ("ps", "multiworker"):
            write_atomic(run.path / "tasks" / "lead-exit", f"{code}\n")
        # The state stays RUNNING until the scheduler (or the local supervisor) confirms the end:
        # status.json never shows a COMPLETED that Slurm could still turn into FAILED or TIMEOUT.
        fields: dict[str, Any] = dict(exit_code=code, end_time=utc_now())
        if signals:
            fields["signals"] = signals
        run.update_status(**fields)
        if code != 0 and job.get("distributed_backend") and not signals:
            _first_failure(run, slot, ctx, code)
        return code
    if stopped:
        return 0
    if signals:
        return code  # ended by the scheduler (cancel, time limit, another task's failure): not the first failure
    server = managed_server(job, slot)
    if code == 0 and not server:
        return 0
    note = "the TensorFlow server ended before the chief" if server else ""
    code = code or 1  # a managed TensorFlow server must never end on its own
    _first_failure(run, slot, ctx, code, note)
    return code


def _first_failure(run: RunDir, slot: Slot, ctx: TaskContext, code: int, note: str = "") -> None:
    """Name the task that failed first; later failures (tasks killed because of it) don't overwrite it."""
    failure = {"rank": slot.rank, "role": slot.role, "index": slot.index, "host": ctx.hostname, "exit_code": code,
               "time": utc_now()}
    if note:
        failure["note"] = note
    run.modify_status(lambda status: None if status.get("first_failure") else {"first_failure": failure})


def _environment_in_job(run: RunDir, job: Mapping[str, Any], ctx: TaskContext) -> None:
    """environment_build: job — every task asks for the environment; the first builds it under the
    cache's lock, the others wait for it and reuse it."""
    from .environments import EnvRequest, EnvironmentError_, ensure
    import msgspec

    spec = job["environment"]
    try:
        record = ensure(Path(spec["root"]), msgspec.convert(spec["request"], EnvRequest))
    except EnvironmentError_ as exc:
        raise TaskSetupError(str(exc)) from None
    if ctx.rank == 0:
        run.write_json(run.path / "environment.json", record)


def _setup_failed(run: RunDir, ctx: TaskContext, message: str) -> int:
    with open(run.rank_err(ctx.rank), "a", encoding="utf-8") as err:
        err.write(f"hpc_tf: task {ctx.rank} cannot start: {message}\n")
    slot = Slot(ctx.rank, ctx.hostname, ctx.local_rank, "task", ctx.rank)
    _first_failure(run, slot, ctx, 2, message)
    if ctx.rank == 0:
        run.update_status(exit_code=2, end_time=utc_now(), message=message)
    return 2


def _write_task(run: RunDir, rank: int, record: dict[str, Any]) -> None:
    (run.path / "tasks").mkdir(exist_ok=True)
    run.write_json(run.path / "tasks" / f"rank-{rank}.json", record)


def _exec(run: RunDir, rank: int, command: list[str], env: dict[str, str]) -> None:
    """Become the entry script (MPI ranks): its stdout/stderr go to the rank's log files."""
    out = os.open(run.rank_out(rank), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    err = os.open(run.rank_err(rank), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.chdir(working_dir(run, rank))
    os.execve(command[0], command, env)


def slurm_task(run_dir: str) -> int:
    """submitit's in-job call. A non-zero exit leaves the process with that code, so Slurm records it."""
    code = run_task(run_dir)
    if code != 0:
        raise SystemExit(code)
    return code


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m hpc_tf.runtime RUN_DIR", file=sys.stderr)
        return 2
    return run_task(Path(args[0]).absolute())


if __name__ == "__main__":
    sys.exit(main())
