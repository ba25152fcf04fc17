"""The command line: `python -m hpc_tf COMMAND`. Config commands in `config_cmds`, run commands in `run_cmds`.

Settings are read once here and passed down. Errors become one message on stderr and exit status 2
(bad input) or 1 (anything else), with a traceback only under --debug; `--json` commands print a JSON
error object on stdout too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from types import ModuleType
from typing import Sequence

from ..errors import HpcTfError

# Which module holds each command (pip's lazy registry): a command loads its own module only, so `render` and
# `submit` never import the run-following or sweep commands. `--help` and an unknown command load them all.
COMMAND_MODULES = {
    **dict.fromkeys(("submit", "render", "validate", "explain", "env"), "config_cmds"),
    **dict.fromkeys(("runs", "status", "logs", "wait", "cancel", "metrics"), "run_cmds"),
    "sweep": "sweep_cmds",
}


def _command_modules(argv: Sequence[str]) -> tuple[ModuleType, ...]:
    """The command modules to load for this argv: the first word's own, or every one."""
    import importlib

    first = next((a for a in argv if not a.startswith("-")), "")
    names = [COMMAND_MODULES[first]] if first in COMMAND_MODULES else sorted(set(COMMAND_MODULES.values()))
    return tuple(importlib.import_module(f"{__name__}.{name}") for name in names)


def _parser(modules: tuple[ModuleType, ...]) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    parser = argparse.ArgumentParser(
        prog="python -m hpc_tf",
        parents=[common],
        description="Run TensorFlow training jobs on Slurm or on this machine.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in modules:
        module.add_commands(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from ..settings import Settings

    argv = list(sys.argv[1:] if argv is None else argv)
    modules = _command_modules(argv)
    args = _parser(modules).parse_args(argv)
    commands = {name: cmd for module in modules for name, cmd in module.COMMANDS.items()}
    try:
        settings = Settings.from_env(runs_dir=getattr(args, "runs_dir", None))
        code = commands[args.command](args, settings)
        sys.stdout.flush()
        return code
    except HpcTfError as exc:
        if args.debug:
            raise
        try:
            if getattr(args, "json", False):
                print(json.dumps({"error": str(exc), "exit_status": exc.exit_status}), flush=True)
        except BrokenPipeError:
            _quiet_stdout()
        print(f"hpc_tf: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except BrokenPipeError:  # the reader (`| head`) went away: not an error worth a traceback
        _quiet_stdout()
        return 1


def _quiet_stdout() -> None:
    """stdout's reader is gone: send what is left to /dev/null, so that the last flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
