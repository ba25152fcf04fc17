"""Where one `python -m hpc_tf CLI-ARGS` process spends its own time, measured inside the process.

bench_cli.py --profile runs this instead of `python -m hpc_tf …` to itemise `submit` (or `render`):

  1. imports: every module the real command imports (the list comes from a `python -X importtime` run
     of the same command, `--preimport FILE`, one name per line) is imported first, in that order, and
     timed as one block, so that
  2. the phases that follow are the work alone: hpc_tf's own functions (and submitit's sbatch call,
     subprocesses, fsync) are wrapped with timers, wherever they were imported by name. Nested phases
     are reported inclusive and exclusive (without the wrapped phases inside them).

  python bench/_submit_phases.py [--preimport FILE] [--cprofile N] -- submit configs/digits.yaml …

Prints one JSON document: imports_ms, main_ms (hpc_tf.cli.main), phases {label: {incl_ms, excl_ms, calls}},
cli_stdout / cli_stderr (what the command printed, captured), missing (wrap targets not found: the
package changed), and with --cprofile N the N functions with the largest cumulative time in `main`.
"""

from __future__ import annotations

import time

T_DRIVER = time.perf_counter()  # the interpreter is up (site done): this module is __main__
STARTED_AT = time.time()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import functools  # noqa: E402
import importlib  # noqa: E402
import inspect  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

# (module, attribute path, label): hpc_tf's phases, then the calls that leave Python
TARGETS = [
    ("hpc_tf.settings", "Settings.from_env", "settings"),
    ("hpc_tf.cli", "_parser", "argparse: build parser"),
    ("hpc_tf.cli.config_cmds", "_estimator", "config: load + validate"),
    ("hpc_tf.config.loading", "load_yaml", "config: read + parse YAML"),
    ("hpc_tf.config.loading", "validate", "config: validate"),
    ("hpc_tf.runs.submit", "prepare", "prepare"),
    ("hpc_tf.config.targets", "resolve_target", "prepare: resolve target"),
    ("hpc_tf.backends", "choose_backend", "prepare: choose backend"),
    ("hpc_tf.core.plan", "slurm_plan", "prepare: plan"),
    ("hpc_tf.core.plan", "local_plan", "prepare: plan"),
    ("hpc_tf.runs.render", "render_script", "prepare: render template"),
    ("hpc_tf.runs.submit", "submit", "submit"),
    ("hpc_tf.runs.snapshot", "plan_snapshot", "snapshot: plan"),
    ("hpc_tf.runs.snapshot", "copy_snapshot", "snapshot: copy"),
    ("hpc_tf.runs.submit", "job_interpreter", "job interpreter"),
    ("hpc_tf.runs.submit", "_check_job_packages", "check job packages"),
    ("hpc_tf.rundir", "RunDir.create", "run dir: create"),
    ("hpc_tf.rundir", "RunDir.transition", "status.json transition"),
    ("hpc_tf.rundir", "RunDir.write_job", "write job.json"),
    ("hpc_tf.runs.submit", "_write_run", "write run dir"),
    ("yaml", "safe_dump", "write run dir: yaml dump"),
    ("hpc_tf.rundir", "write_atomic", "write_atomic (all)"),
    ("hpc_tf.backends.slurm_submit", "submit_script", "submitit: submit"),
    ("submitit.core.utils", "CommandFunction.__call__", "sbatch (submitit CommandFunction)"),
    ("os", "fsync", "fsync"),
    ("subprocess", "run", "subprocess.run"),
]


class Timers:
    def __init__(self) -> None:
        self.incl: dict[str, float] = {}
        self.excl: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.stack: list[list[Any]] = []  # [label, start, time spent in wrapped children]

    def wrap(self, func: Callable[..., Any], label: str) -> Callable[..., Any]:
        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            name = label
            if label == "subprocess.run":  # name the program: scontrol, sbatch, …
                argv = args[0] if args else kwargs.get("args")
                name = f"subprocess.run: {Path(str(argv[0] if isinstance(argv, list | tuple) else argv)).name}"
            frame = [name, time.perf_counter(), 0.0]
            self.stack.append(frame)
            try:
                return func(*args, **kwargs)
            finally:
                self.stack.pop()
                spent = time.perf_counter() - frame[1]
                self.incl[name] = self.incl.get(name, 0.0) + spent
                self.excl[name] = self.excl.get(name, 0.0) + spent - frame[2]
                self.calls[name] = self.calls.get(name, 0) + 1
                if self.stack:
                    self.stack[-1][2] += spent

        return timed


def install(timers: Timers) -> list[str]:
    """Wrap every target that exists, in its module and wherever it was imported by name; return the missing."""
    missing = []
    for module_name, attr, label in TARGETS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            missing.append(f"{module_name} (module)")
            continue
        owner: Any = module
        *path, name = attr.split(".")
        try:
            for part in path:
                owner = getattr(owner, part)
            static = inspect.getattr_static(owner, name)
        except AttributeError:
            missing.append(f"{module_name}.{attr}")
            continue
        if isinstance(static, classmethod):
            setattr(owner, name, classmethod(timers.wrap(static.__func__, label)))
            continue
        if isinstance(static, staticmethod):
            setattr(owner, name, staticmethod(timers.wrap(static.__func__, label)))
            continue
        original = getattr(owner, name)
        wrapped = timers.wrap(original, label)
        setattr(owner, name, wrapped)
        if owner is module and module_name not in ("os", "subprocess"):
            for other in list(sys.modules.values()):  # `from module import name` copies
                if other is not None and other is not module and getattr(other, name, None) is original:
                    with contextlib.suppress(AttributeError, TypeError):
                        setattr(other, name, wrapped)
    return missing


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preimport", help="file with the module names to import first, in order")
    p.add_argument("--cprofile", type=int, default=0, help="also profile main() and report the top N functions")
    p.add_argument("cli", nargs=argparse.REMAINDER, help="-- then the hpc_tf command line")
    args = p.parse_args()
    cli = args.cli[1:] if args.cli[:1] == ["--"] else args.cli

    t_imports = time.perf_counter()
    failed = []
    names = Path(args.preimport).read_text().split() if args.preimport else []
    for name in ["hpc_tf.cli", *names]:
        if name in sys.modules or name == "__main__":
            continue
        try:
            importlib.import_module(name)
        except Exception:  # a module that only imports in its own context (platform probes)
            failed.append(name)
    imports_ms = (time.perf_counter() - t_imports) * 1000

    timers = Timers()
    missing = install(timers)
    from hpc_tf.cli import main as cli_main

    out, err = io.StringIO(), io.StringIO()
    profiler = None
    if args.cprofile:
        import cProfile

        profiler = cProfile.Profile()
    t_main = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        if profiler is not None:
            profiler.enable()
        code = cli_main(cli)
        if profiler is not None:
            profiler.disable()
    main_ms = (time.perf_counter() - t_main) * 1000
    doc: dict[str, Any] = {
        "exit_code": code,
        "driver_start_to_main_ms": (t_main - T_DRIVER) * 1000,
        "imports_ms": imports_ms,
        "imported_modules": len(names),
        "failed_imports": failed,
        "main_ms": main_ms,
        "phases": {
            label: {
                "incl_ms": timers.incl[label] * 1000,
                "excl_ms": timers.excl[label] * 1000,
                "calls": timers.calls[label],
            }
            for label in timers.incl
        },
        "missing": missing,
        "cli_stdout": out.getvalue(),
        "cli_stderr": err.getvalue(),
    }
    if profiler is not None:
        import pstats

        stats = pstats.Stats(profiler)
        rows = []
        for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():
            where = filename.replace(sys.prefix, "<prefix>").replace(str(Path.cwd()), ".")
            rows.append(
                {
                    "function": f"{where}:{line}({func})",
                    "calls": ncalls,
                    "tottime_ms": tottime * 1000,
                    "cumtime_ms": cumtime * 1000,
                }
            )
        doc["cprofile_top"] = sorted(rows, key=lambda r: -r["cumtime_ms"])[: args.cprofile]
        doc["cprofile_tottime_top"] = sorted(rows, key=lambda r: -r["tottime_ms"])[: args.cprofile]
    doc["driver_started_at"] = STARTED_AT
    doc["driver_done_at"] = time.time()
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
