"""Run `python -m hpc_tf …` or `python -m hpc_tf.job …` with proposed changes emulated, to measure them before anyone
writes them. bench_whatif.py times this wrapper against itself with no patch (the baseline), interleaved.

    python bench/_whatif.py PATCHES MODULE ARGS…      PATCHES: comma-separated names, or "none"

Every patch is an emulation by monkeypatching, made in this process before hpc_tf runs; none edits hpc_tf:

  gc          gc.disable() before anything is imported, gc.freeze() before the interpreter's teardown
              (proposal: hpc_tf/__main__.py and hpc_tf/job/__main__.py)
  nosubmitit  hpc_tf.backends.slurm_submit replaced by a direct `sbatch --parsable --chdir=RUN job.sh`
              (subprocess.run) that never imports submitit
  fcntl       a `filelock` module whose FileLock is fcntl.flock with a polling timeout (rundir's only use)
  noprobe     no `scontrol ping` when the backend was named explicitly (probe.slurm_answers answers yes)
  deferfsync  no fsync until sbatch has run (submit: the run directory's files and the SUBMITTED status);
              in hpc_tf.job: no fsync until the entry script has been started
  secrets     rundir's run id without the `secrets` module (no hashlib/hmac/OpenSSL at import)
  pyrender    the shipped slurm template rendered by plain Python (no jinja2 import); checked against jinja2
              once by bench_whatif.py
  spawnfirst  hpc_tf.job: the entry script is started before the task's records are written (status RUNNING
              and tasks/rank-N.json are written while it starts)
  fastpath    hpc_tf.job, single-process jobs: read job.json with json, start the entry script, and only then
              import hpc_tf's runtime to write the records and supervise (implies spawnfirst)
"""

from __future__ import annotations

import gc
import os
import sys

PATCHES = set(sys.argv[1].split(",")) - {"none", ""}
if "gc" in PATCHES:
    gc.disable()

import runpy  # noqa: E402
import types  # noqa: E402

KNOWN = {"gc", "nosubmitit", "fcntl", "noprobe", "deferfsync", "secrets", "pyrender", "spawnfirst", "fastpath"}
if PATCHES - KNOWN:
    sys.exit(f"_whatif.py: unknown patches {sorted(PATCHES - KNOWN)}; known: {sorted(KNOWN)}")

_DEFER = {"on": "deferfsync" in PATCHES}


def _patch_fsync() -> None:
    real = os.fsync

    def fsync(fd: int) -> None:
        if not _DEFER["on"]:
            real(fd)

    os.fsync = fsync


def _fsync_again_at_spawn() -> None:
    """hpc_tf.job: durable writes again once the entry script is being started (Popen, or exec for MPI ranks)."""
    import subprocess

    real_init, real_execve = subprocess.Popen.__init__, os.execve

    def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        _DEFER["on"] = False
        real_init(self, *args, **kwargs)

    def execve(*args):  # type: ignore[no-untyped-def]
        _DEFER["on"] = False
        real_execve(*args)

    subprocess.Popen.__init__ = init  # type: ignore[method-assign]
    os.execve = execve


def _patch_filelock() -> None:
    import fcntl
    import time

    mod = types.ModuleType("filelock")

    class Timeout(TimeoutError):
        pass

    class FileLock:
        def __init__(self, path: str, timeout: float = -1) -> None:
            self.path, self.timeout, self.fd = path, timeout, -1

        def __enter__(self) -> FileLock:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            deadline = time.monotonic() + self.timeout if self.timeout >= 0 else None
            while True:
                try:
                    fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return self
                except BlockingIOError:
                    if deadline is not None and time.monotonic() > deadline:
                        os.close(self.fd)
                        raise Timeout(self.path) from None
                    time.sleep(0.01)

        def __exit__(self, *exc: object) -> None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)

    mod.FileLock, mod.Timeout = FileLock, Timeout  # type: ignore[attr-defined]
    sys.modules["filelock"] = mod


def _patch_secrets() -> None:
    mod = types.ModuleType("secrets")
    mod.token_hex = lambda n=32: os.urandom(n).hex()  # type: ignore[attr-defined]
    sys.modules["secrets"] = mod


def _patch_submitit() -> None:
    import subprocess

    mod = types.ModuleType("hpc_tf.backends.slurm_submit")

    def submit_script(run, script):  # type: ignore[no-untyped-def]
        from hpc_tf.errors import SubmissionError

        argv = ["sbatch", "--parsable", f"--chdir={run.path}", str(run.script)]
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SubmissionError("sbatch refused the job", argv, proc.stderr, str(run.path))
        _DEFER["on"] = False
        return proc.stdout.strip().split(";")[0]

    mod.submit_script = submit_script  # type: ignore[attr-defined]
    sys.modules["hpc_tf.backends.slurm_submit"] = mod


def _patch_after_sbatch() -> None:
    """With the real submitit path: fsync again once sbatch has run."""
    from hpc_tf.backends import slurm

    real = slurm.SlurmBackend.submit

    def submit(self, run, script):  # type: ignore[no-untyped-def]
        try:
            return real(self, run, script)
        finally:
            _DEFER["on"] = False

    slurm.SlurmBackend.submit = submit  # type: ignore[method-assign]


def _patch_probe() -> None:
    from hpc_tf.backends import probe

    probe.slurm_answers = lambda timeout: (True, "not probed (what-if)")  # type: ignore[assignment]


def render_slurm(plan) -> str:  # type: ignore[no-untyped-def]
    """slurm.sh.j2 + _prologue.sh.j2, by hand (the shipped text as of this benchmark; bench_whatif.py checks it)."""
    from hpc_tf._version import __version__
    from hpc_tf.runs.render import sbatch_directive, sh_join, sh_quote

    out = [
        "#!/bin/bash\n",
        f"# Job script generated by hpc_tf {sh_quote(__version__)} (backend: slurm).\n",
        "# It runs with the run directory as its working directory (sbatch --chdir=RUN_DIR).\n",
    ]
    out += [f"#SBATCH {sbatch_directive(d)}\n" for d in plan.directives]
    traced = bool(os.environ.get("BENCH_TRACE_FILE"))  # bench_launch.py's trace lines, as its site template has them
    echo = 'echo "$EPOCHREALTIME $$ - {} -" >> "${{BENCH_TRACE_FILE:-/dev/null}}"\n'
    out += [echo.format("script_start")] if traced else []
    out += ["set -euo pipefail\n", f"export HPC_TF_BACKEND={sh_quote(plan.backend)}\n", "export PYTHONUNBUFFERED=1\n"]
    if plan.package_root:
        out += [
            "# the hpc_tf that rendered this script runs from a source checkout: let the job import it\n",
            f'export PYTHONPATH={sh_quote(plan.package_root)}"${{PYTHONPATH:+:$PYTHONPATH}}"\n',
        ]
    if plan.modules or plan.setup:
        raise NotImplementedError("pyrender emulates the shipped template without modules/setup only")
    out += [echo.format("before_launch")] if traced else []
    launch = list(plan.launch)
    job_patches = os.environ.get("BENCH_WHATIF_JOB_PATCHES")  # bench_launch.py --whatif: the job runs _whatif.py too
    if job_patches and launch[-3:] == ["-m", "hpc_tf.job", "."]:
        launch = [*launch[:-3], os.path.abspath(__file__), job_patches, "hpc_tf.job", "."]
    out += [
        "\n",
        "# exec: Slurm's signals (scancel, time limit) reach srun and the tasks, not a shell in between.\n",
        f"exec {sh_join(launch)}\n",
    ]
    return "".join(out)


def _patch_render() -> None:
    from hpc_tf.runs import render, submit

    real = render.render_script

    def render_script(plan, site_dir=None, cache_dir=None):  # type: ignore[no-untyped-def]
        if plan.backend == "slurm" and not site_dir:
            return render_slurm(plan)
        return real(plan, site_dir, cache_dir)

    render.render_script = render_script  # type: ignore[assignment]
    submit.render_script = render_script  # type: ignore[attr-defined]


def run_task_spawn_first(run_dir):  # type: ignore[no-untyped-def]
    """hpc_tf.job.runtime.run_task with the records written in supervise's `started` callback (after Popen)."""
    import socket

    import msgspec

    from hpc_tf.job import runtime as rt
    from hpc_tf.job.context import TaskContext, TaskSetupError

    run = rt.RunDir(run_dir)
    job = run.read_job()
    if job.environment is not None or job.distributed_backend == "mpi":
        return rt.run_task(run_dir)  # not emulated: environments built in the job, and `become` (exec)
    hostname = socket.gethostname()
    try:
        ctx = TaskContext.from_env(os.environ, hostname)
        slots = rt.job_slots(job, ctx)
        slot = rt.my_slot(ctx, slots)
        env = rt.child_environment(os.environ, job, run, ctx.rank)
        env.update(rt.task_environment(job, slots, slot, env))
        rt.check_packages(job, env)
    except TaskSetupError:
        return rt.run_task(run_dir)
    record = rt.TaskRecord(
        rank=slot.rank,
        role=slot.role,
        index=slot.index,
        host=ctx.hostname,
        port=slot.port,
        local_rank=slot.local_rank,
        cuda_visible_devices=env.get("CUDA_VISIBLE_DEVICES"),
        start_time=rt.utc_now(),
        pid=os.getpid(),
    )

    def started(pid: int) -> None:
        _DEFER["on"] = False
        if ctx.rank == 0:
            run.transition(lambda s: rt.transitions.started(s, rt.utc_now(), ctx.job_nodes, ctx.restart_count))
        run.write_task(msgspec.structs.replace(record, child_pid=pid))

    watch_lead = slot.rank != 0 and job.distributed_backend in ("ps", "multiworker")
    code, stopped, signals = rt.supervise(run, slot.rank, rt.task_argv(job, slot), env, watch_lead, started)
    run.write_task(
        msgspec.structs.replace(
            record, end_time=rt.utc_now(), exit_code=code, stopped_after_chief=stopped, child_pid=None
        )
    )
    return rt._record_end(run, job, slot, ctx, code, stopped, signals)


def fast_path(run_dir: str) -> int | None:
    """Single-process jobs: start the entry script after reading job.json with the stdlib only, then import the
    runtime. None when the job is not one this emulation covers (the normal path runs)."""
    import json
    import subprocess
    from pathlib import Path

    run = Path(run_dir).absolute()
    job = json.loads((run / "job.json").read_bytes())
    if job.get("distributed_backend") or job.get("environment") or job.get("use_gpu"):
        return None
    if any(k in os.environ for k in ("OMPI_COMM_WORLD_RANK", "HPC_TF_TASK_RANK")):
        return None
    env = {**os.environ, **job.get("default_env", {}), **job.get("env", {})}
    env.update(
        HPC_TF_RUN_DIR=str(run),
        HPC_TF_RUN_ID=run.name,
        HPC_TF_OUTPUTS_DIR=str(run / "outputs"),
        HPC_TF_RANK="0",
        HPC_TF_TENSORBOARD_DIR=str(run / "tensorboard"),
        PYTHONUNBUFFERED="1",
    )
    (run / "logs").mkdir(exist_ok=True)
    with open(run / "logs" / "rank-0.out", "ab") as out, open(run / "logs" / "rank-0.err", "ab") as err:
        proc = subprocess.Popen(
            job["command"], cwd=run / "snapshot", stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env
        )
    _DEFER["on"] = False
    # now the runtime: its imports and records overlap the entry script's start
    import socket

    import msgspec

    from hpc_tf.envs.interpreters import shell_exit_code
    from hpc_tf.job import runtime as rt
    from hpc_tf.job.context import TaskContext

    rundir = rt.RunDir(run)
    jobrec = rundir.read_job()
    ctx = TaskContext.from_env(os.environ, socket.gethostname())
    slot = rt.my_slot(ctx, [])
    if ctx.rank == 0:
        rundir.transition(lambda s: rt.transitions.started(s, rt.utc_now(), ctx.job_nodes, ctx.restart_count))
    record = rt.TaskRecord(
        rank=0, role=slot.role, index=slot.index, host=ctx.hostname, start_time=rt.utc_now(), pid=os.getpid()
    )
    rundir.write_task(msgspec.structs.replace(record, child_pid=proc.pid))
    code = shell_exit_code(proc.wait())
    rundir.write_task(msgspec.structs.replace(record, end_time=rt.utc_now(), exit_code=code))
    return rt._record_end(rundir, jobrec, slot, ctx, code, False, [])


def main() -> None:
    module, args = sys.argv[2], sys.argv[3:]
    if "deferfsync" in PATCHES:
        _patch_fsync()
    if "fcntl" in PATCHES:
        _patch_filelock()
    if "secrets" in PATCHES:
        _patch_secrets()
    if "deferfsync" in PATCHES and module == "hpc_tf.job":
        _fsync_again_at_spawn()
    if "fastpath" in PATCHES and module == "hpc_tf.job":
        code = fast_path(args[0])
        if code is not None:
            if "gc" in PATCHES:
                gc.freeze()
            sys.exit(code)
    if "nosubmitit" in PATCHES:
        _patch_submitit()
    if module == "hpc_tf":
        if "deferfsync" in PATCHES and "nosubmitit" not in PATCHES:
            _patch_after_sbatch()
        if "noprobe" in PATCHES:
            _patch_probe()
        if "pyrender" in PATCHES:
            _patch_render()
    sys.argv = [module, *args]
    try:
        if module == "hpc_tf.job" and ("spawnfirst" in PATCHES or "fastpath" in PATCHES):
            from pathlib import Path

            sys.exit(run_task_spawn_first(Path(args[0]).absolute()))
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        if "gc" in PATCHES:
            gc.freeze()


if __name__ == "__main__":
    main()
