"""Bench-only launch tracing: bench_launch.py puts this folder on PYTHONPATH, so every Python process of a
traced run (the submit process, `python -m hpc_tf.job`, the entry script, the local supervisor) imports
it at start-up and appends one line per event to $BENCH_TRACE_FILE:

    <time.time()> <pid> <rank or -> <event> <detail>

events: `site` (the interpreter has finished its own start-up: this module runs at the end of `site`),
`open` (the first open of a file named job.json: the in-job runtime's imports are done, its work starts),
`popen` (subprocess.Popen: detail = the program started), `exec` (os.exec*: detail = the program).
Nothing happens without BENCH_TRACE_FILE. Lines are single O_APPEND writes, so processes on every fake
node can share one file. Cost: one import and an audit hook that returns at once for other events.
"""

import os
import sys
import time

_STARTED = time.time()
_PATH = os.environ.get("BENCH_TRACE_FILE")


def _write(event: str, detail: str, when: float) -> None:
    rank = os.environ.get("HPC_TF_RANK") or os.environ.get("OMPI_COMM_WORLD_RANK") or os.environ.get("SLURM_PROCID")
    line = f"{when:.6f} {os.getpid()} {rank or '-'} {event} {detail}\n"
    try:
        fd = os.open(_PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8", "replace"))
        finally:
            os.close(fd)
    except OSError:
        pass


if _PATH:
    try:
        with open("/proc/self/cmdline", "rb") as f:
            _CMD = " ".join(a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a)
    except OSError:
        _CMD = " ".join(sys.argv)
    _write("site", _CMD.replace("\n", " "), _STARTED)
    _WANTED = frozenset({"open", "subprocess.Popen", "os.exec", "os.posix_spawn"})
    _seen_job_json = False

    def _hook(event: str, args: tuple) -> None:
        global _seen_job_json
        if event not in _WANTED:
            return
        if event == "open":
            path = args[0]
            if not _seen_job_json and isinstance(path, (str, bytes, os.PathLike)):
                path = os.fsdecode(path)
                if path.endswith("job.json"):
                    _seen_job_json = True
                    _write("open", path, time.time())
            return
        prog = args[0] if args and args[0] is not None else (args[1][0] if len(args) > 1 and args[1] else "?")
        _write("popen" if event != "os.exec" else "exec", os.path.basename(os.fsdecode(prog)), time.time())

    sys.addaudithook(_hook)
