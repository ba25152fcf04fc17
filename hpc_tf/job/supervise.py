"""Running the entry script as a child: working directories, log files, signals, stopping, exec."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

from ..core.lifecycle import shell_code
from ..rundir import RunDir
from . import orphans

STOP_GRACE_SECONDS = 5.0
POLL_SECONDS = 0.25


def working_dir(run: RunDir, rank: int) -> Path:
    """Rank 0 runs in the snapshot (its ./outputs links to the run's outputs/). Other ranks run in
    `work/rank-N/`: links to every entry of the snapshot, and an ./outputs of their own, so ranks
    that write the same file names don't overwrite each other's."""
    if rank == 0:
        return run.snapshot
    work = run.work_dir(rank)
    if not work.is_dir():
        tmp = work.with_name(f".{work.name}.tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        for entry in run.snapshot.iterdir():
            if entry.name != "outputs" and not (tmp / entry.name).exists():
                (tmp / entry.name).symlink_to(entry)
        outputs = run.rank_outputs(rank)
        outputs.mkdir(parents=True, exist_ok=True)
        if not (tmp / "outputs").exists():
            (tmp / "outputs").symlink_to(outputs)
        os.replace(tmp, work)
    return work


def supervise(
    run: RunDir,
    rank: int,
    command: list[str],
    env: dict[str, str],
    stop_when: Callable[[], bool] | None,
    started: Callable[[int], None],
    forward_signals: bool = False,
    on_signal: Callable[[int], None] | None = None,
    ignore_in_child: tuple[int, ...] = (),
) -> tuple[int, bool, list[str]]:
    """Run the task's process to its end; with `stop_when`, asked every POLL_SECONDS, stop it once that says
    so (the lead, rank 0, has ended; a sweep's policy stopped the trial).

    Slurm signals the step's whole process group, so the child gets a signal with the runtime, which only
    records it and stays alive to write the end. Open MPI's daemons signal only the process they started
    (the runtime): under mpirun (`forward_signals`) the runtime passes the signal on to the child.
    What the script detached from its group (`setsid`) gets a cancel's or time limit's signal from the runtime,
    is killed orphans.KILL_AFTER_SECONDS later, and is ended with the script (job.orphans).
    Returns (exit code as a shell reports it, stopped by `stop_when`, signals the runtime received)."""
    received: list[str] = []
    child: list[subprocess.Popen[bytes]] = []
    kill_escaped_at: list[float] = []
    orphans.become_subreaper()

    def note_signal(signum: int, _frame: object) -> None:
        received.append(signal.Signals(signum).name)
        if on_signal is not None:
            on_signal(signum)
        if forward_signals and child and child[0].poll() is None:
            child[0].send_signal(signum)
        if signum in (signal.SIGTERM, signal.SIGINT) and child:
            orphans.signal_all(orphans.escaped(exclude=child[0].pid), signum)
            kill_escaped_at[:] = [time.monotonic() + orphans.KILL_AFTER_SECONDS]

    for sig in {signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2, *ignore_in_child}:
        signal.signal(sig, note_signal)

    def child_setup() -> None:  # the disposition SIG_IGN survives exec: the script is not killed by the warning
        for sig in ignore_in_child:
            signal.signal(sig, signal.SIG_IGN)

    with open(run.rank_out(rank), "ab") as out, open(run.rank_err(rank), "ab") as err:
        try:
            proc = subprocess.Popen(
                command,
                cwd=working_dir(run, rank),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                preexec_fn=child_setup if ignore_in_child else None,  # noqa: PLW1509 - signal dispositions only
            )
        except OSError as exc:
            err.write(f"hpc_tf: cannot start {command[0]}: {exc}\n".encode())
            return 127, False, received
        child.append(proc)
        started(proc.pid)
        stopped = False
        while True:
            try:
                returncode = proc.wait(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                if not stopped and stop_when is not None and stop_when():
                    stopped = True
                    stop(proc)
                if kill_escaped_at and time.monotonic() >= kill_escaped_at[0]:
                    orphans.signal_all(orphans.escaped(exclude=proc.pid), signal.SIGKILL)
                    kill_escaped_at.clear()
        left = orphans.end_all()  # the script's status is collected: reaping orphans cannot take it
        if left:
            err.write(
                f"hpc_tf: ended {len(left)} process(es) the entry script left running: {', '.join(left)}\n".encode()
            )
    return shell_code(returncode), stopped, received


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
