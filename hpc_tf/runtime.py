"""The in-job entry point: runs the entry script for one task and records what happened.

On Slurm it is called on every task through submitit's pickled call (`slurm_task`); on the
local backend as `python -m hpc_tf.runtime RUN_DIR`. It never imports TensorFlow.

Environment variables read: SLURM_PROCID (task rank, default 0), SLURM_JOB_ID,
SLURM_JOB_NODELIST (the allocation's nodes), HPC_TF_BACKEND (set by the job script).
Environment variables given to the entry script, besides environment_variables:
HPC_TF_RUN_DIR, HPC_TF_RUN_ID, HPC_TF_OUTPUTS_DIR, HPC_TF_RANK.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Mapping

from .hostlist import expand
from .rundir import RunDir, utc_now


def task_rank(env: Mapping[str, str]) -> int:
    return int(env.get("SLURM_PROCID", "0"))


def job_nodes(env: Mapping[str, str]) -> list[str]:
    """The allocation's nodes in Slurm's order, or this host outside Slurm."""
    nodelist = env.get("SLURM_JOB_NODELIST", "")
    return expand(nodelist) if nodelist else [socket.gethostname()]


def child_environment(env: Mapping[str, str], job: Mapping, run: RunDir, rank: int) -> dict[str, str]:
    """The entry script's environment: the job's, the user's environment_variables, hpc_tf's own."""
    out = dict(env)
    out.update(job.get("env", {}))
    out.update(
        HPC_TF_RUN_DIR=str(run.path),
        HPC_TF_RUN_ID=run.run_id,
        HPC_TF_OUTPUTS_DIR=str(run.outputs),
        HPC_TF_RANK=str(rank),
        PYTHONUNBUFFERED="1",
    )
    return out


def shell_exit_code(returncode: int) -> int:
    """A child killed by signal N is reported the way shells and Slurm do: 128 + N."""
    return returncode if returncode >= 0 else 128 - returncode


def run_task(run_dir: str | Path) -> int:
    """Run this task's share of the job in the snapshot; return the entry script's exit code."""
    run = RunDir(run_dir)
    job = run.read_job()
    env = os.environ
    rank = task_rank(env)
    if rank == 0:
        run.update_status(state="RUNNING", start_time=utc_now(), nodes=job_nodes(env))
    received: list[str] = []

    def note_signal(signum: int, _frame: object) -> None:
        # The scheduler signals the whole process group, so the entry script gets it too;
        # the runtime only records it and stays alive to write the final status.
        received.append(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, note_signal)
    with open(run.rank_out(rank), "ab") as out, open(run.rank_err(rank), "ab") as err:
        try:
            proc = subprocess.Popen(
                job["command"], cwd=run.snapshot, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                env=child_environment(env, job, run, rank),
            )
        except OSError as exc:
            err.write(f"hpc_tf: cannot start {job['command'][0]}: {exc}\n".encode())
            returncode = 127
        else:
            returncode = proc.wait()
    code = shell_exit_code(returncode)
    if rank == 0:
        fields = dict(exit_code=code, end_time=utc_now(), state="COMPLETED" if code == 0 else "FAILED")
        if received:
            fields["signals"] = received
        run.update_status(**fields)
    return code


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
