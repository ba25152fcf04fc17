"""The command line: `python -m hpc_tf COMMAND`. Config commands in `config_cmds`, run commands in `run_cmds`.

Settings are read once here and passed down. Errors become one message on stderr and exit status 2
(bad input) or 1 (anything else), with a traceback only under --debug; `--json` commands print a JSON
error object on stdout too.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from types import ModuleType
from typing import Any, Sequence

from ..errors import HpcTfError

# Which module holds each command (pip's lazy registry): a command loads its own module only, so `render` and
# `submit` never import the run-following or sweep commands. `--help` and an unknown command load them all.
COMMAND_MODULES = {
    **dict.fromkeys(("submit", "render", "validate", "explain", "env"), "config_cmds"),
    **dict.fromkeys(("runs", "status", "logs", "wait", "cancel", "metrics"), "run_cmds"),
    "sweep": "sweep_cmds",
}


def _command(argv: Sequence[str]) -> str | None:
    """The command this argv names, or None (none, or an unknown one: then every command is built, for the
    usage message and its list of choices)."""
    first = next((a for a in argv if not a.startswith("-")), "")
    return first if first in COMMAND_MODULES else None


def _command_modules(argv: Sequence[str]) -> tuple[ModuleType, ...]:
    """The command modules to load for this argv: the first word's own, or every one."""
    import importlib

    command = _command(argv)
    names = [COMMAND_MODULES[command]] if command else sorted(set(COMMAND_MODULES.values()))
    return tuple(importlib.import_module(f"{__name__}.{name}") for name in names)


class _OneCommand:
    """The subparsers action as a command module sees it, building the parser of the command asked for only:
    each parser costs argparse formatters and gettext lookups (~1 ms for a module's five)."""

    def __init__(self, sub: Any, command: str) -> None:
        self._sub, self._command = sub, command

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        return self._sub.add_parser(name, **kwargs) if name == self._command else _Unbuilt()


class _Unbuilt:
    """The parser of a command not asked for: what is added to it goes nowhere."""

    def add_argument(self, *args: Any, **kwargs: Any) -> None:
        return None


def _parser(modules: tuple[ModuleType, ...], command: str | None = None) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    parser = argparse.ArgumentParser(
        prog="python -m hpc_tf",
        parents=[common],
        description="Run TensorFlow training jobs on Slurm or on this machine.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in modules:
        module.add_commands(_OneCommand(sub, command) if command else sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from ..settings import Settings

    argv = list(sys.argv[1:] if argv is None else argv)
    _undecodable_as_bytes(sys.stdout)
    modules = _command_modules(argv)
    args = _parser(modules, _command(argv)).parse_args(argv)
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
                from .text import json_line

                print(json_line({"error": str(exc), "exit_status": exc.exit_status}), flush=True)
        except BrokenPipeError:
            _quiet_stdout()
        print(f"hpc_tf: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except BrokenPipeError:  # the reader (`| head`) went away: not an error worth a traceback
        _quiet_stdout()
        return 1


def _undecodable_as_bytes(stream: Any) -> None:
    """A path of bytes that are not UTF-8 (os.fsdecode gives them as \\udc80-\\udcff) is printed as those bytes, as
    ls prints it, instead of failing with UnicodeEncodeError: stdout's `strict` (a UTF-8 terminal's) becomes
    `surrogateescape`. Any other lone surrogate still cannot be written (validation refuses them in configs)."""
    if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
        stream.reconfigure(errors="surrogateescape")


def _quiet_stdout() -> None:
    """stdout's reader is gone: send what is left to /dev/null, so that the last flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
