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
from typing import Sequence

from ..errors import HpcTfError


def _parser() -> argparse.ArgumentParser:
    from . import config_cmds, run_cmds, sweep_cmds

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    parser = argparse.ArgumentParser(
        prog="python -m hpc_tf",
        parents=[common],
        description="Run TensorFlow training jobs on Slurm or on this machine.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    config_cmds.add_commands(sub, common)
    run_cmds.add_commands(sub, common)
    sweep_cmds.add_commands(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from ..settings import Settings
    from . import config_cmds, run_cmds, sweep_cmds

    args = _parser().parse_args(argv)
    commands = {**config_cmds.COMMANDS, **run_cmds.COMMANDS, **sweep_cmds.COMMANDS}
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
