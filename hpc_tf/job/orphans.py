"""What the entry script leaves behind: processes that left its process group or session (`setsid`, a daemon's
double fork) escape how Slurm (proctrack/pgid) and the local backend (the session) end a job. The runtime is
their child subreaper, so each of them stays a descendant of the runtime however it detaches, and the runtime
ends them with the task: at a cancel or time limit (they get the signal the task got; what still runs is killed
before Slurm's KillWait ends the runtime itself), and when the entry script exits.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time

PR_SET_CHILD_SUBREAPER = 36
KILL_AFTER_SECONDS = 2.0  # well inside KillWait (Slurm's default 30 s; 5 s on the dev cluster)


def become_subreaper() -> bool:
    """Orphaned descendants are reparented to this process, not to init (Linux ≥ 3.4; False elsewhere)."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def descendants(root: int | None = None) -> list[int]:
    """Every live process under `root` (this process by default), read from /proc; [] where there is none."""
    root = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields and fields[0] != b"Z":
            children.setdefault(int(fields[1]), []).append(int(name))
    found: list[int] = []
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def escaped(exclude: int | None = None) -> list[int]:
    """The descendants outside this process's group: a signal Slurm sends the step's group never reaches them."""
    group = os.getpgrp()
    out = []
    for pid in descendants():
        try:
            if pid != exclude and os.getpgid(pid) != group:
                out.append(pid)
        except OSError:
            continue
    return out


def signal_all(pids: list[int], sig: int) -> list[int]:
    """Send `sig` to each; returns those that were still there."""
    sent = []
    for pid in pids:
        try:
            os.kill(pid, sig)
            sent.append(pid)
        except OSError:
            continue
    return sent


def end_all(grace: float = KILL_AFTER_SECONDS) -> list[str]:
    """After the entry script's end: SIGTERM whatever it left running, SIGKILL what is left after `grace` seconds,
    reap them. Returns "PID (NAME)" of each process ended, for the task's log."""
    left = descendants()
    if not left:
        return []
    ended = [f"{pid} ({_name(pid)})" for pid in left]
    signal_all(left, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while descendants() and time.monotonic() < deadline:
        reap()
        time.sleep(0.05)
    signal_all(descendants(), signal.SIGKILL)
    deadline = time.monotonic() + grace
    while descendants() and time.monotonic() < deadline:
        reap()
        time.sleep(0.05)
    reap()
    return ended


def reap() -> None:
    """Collect the exit of every orphan reparented here that has ended (the subreaper's duty)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as comm:
            return comm.read().strip()
    except OSError:
        return "?"
