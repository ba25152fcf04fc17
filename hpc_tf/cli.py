"""The command line: `python -m hpc_tf submit|render|validate CONFIG`, and `status|wait|cancel RUN`.

Each subcommand is a small function over the Python API; errors become one message on
stderr and exit status 2 (bad input) or 1 (anything else), with a traceback only under --debug.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

from .errors import HpcTfError, UsageError


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    parser = argparse.ArgumentParser(prog="python -m hpc_tf", parents=[common],
                                     description="Run TensorFlow training jobs on Slurm or on this machine.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def config_cmd(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text)
        p.add_argument("config", help="estimator config (YAML)")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key (dotted keys, YAML values); repeatable")
        return p

    p = config_cmd("submit", "validate, snapshot, render and submit a job")
    _backend_opt(p)
    p.add_argument("--runs-dir", help="where run directories go (default: $HPC_TF_RUNS_DIR or ./runs)")
    p.add_argument("--wait", action="store_true", help="stream the job's output until it ends; exit with its exit code")
    p.add_argument("--json", action="store_true", help="print {run_id, job_id, run_dir, backend} as JSON")
    p = config_cmd("render", "print the job script that submit would submit")
    _backend_opt(p)
    config_cmd("validate", "check a config and report every problem")
    p = config_cmd("explain", "show which task runs where, as what, on which port and GPUs")
    p.add_argument("--nodelist", help="the allocation's nodes as a Slurm hostlist (default: node[1-N])")
    p.add_argument("--job-id", type=int, default=None, help="job id the ports are derived from (default: show offsets)")
    p.add_argument("--gpus-per-node", type=int, default=None, help="GPUs Slurm makes visible per node (default: from the config)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = sub.add_parser("env", parents=[common], help="list or prune the cached job environments")
    p.add_argument("action", choices=["list", "prune"])
    p.add_argument("--older-than", type=float, metavar="DAYS", help="prune: environments unused for this many days")
    p.add_argument("--key", action="append", default=[], help="prune: this environment (repeatable)")
    p.add_argument("--all", action="store_true", help="prune: every environment")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    from .cli_runs import add_commands

    add_commands(sub, common)
    return parser


def _backend_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default="auto", choices=["auto", "slurm", "local"],
                   help="auto (default): the compute_target's, else Slurm if a cluster answers, else local")


def cmd_validate(args: argparse.Namespace) -> int:
    from .experiment import TensorFlow

    est = TensorFlow.from_yaml(args.config, args.overrides)
    target = est.target()
    print(f"{args.config}: valid (experiment {est.spec.experiment!r}, compute target {target.name!r})")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from .experiment import TensorFlow
    from .explain import explain_rows, format_rows

    est = TensorFlow.from_yaml(args.config, args.overrides)
    rows = explain_rows(est.spec, est.target(), args.nodelist, args.job_id, args.gpus_per_node)
    print(json.dumps(rows) if args.json else format_rows(est.spec, rows, args.job_id))
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    import time

    from .environments import cache_root, list_envs, prune

    root = cache_root(os.environ)
    if args.action == "list":
        envs = list_envs(root) if root.is_dir() else []
        if args.json:
            print(json.dumps(envs))
            return 0
        print(f"environments in {root}:" if envs else f"no environments in {root}")
        for e in envs:
            age = (time.time() - e["last_used"]) / 86400
            packages = " ".join(e["request"]["packages"]) or "(requirements file)"
            print(f"  {e['key']}  {e['size_bytes'] / 2**20:7.1f} MiB  used {age:5.1f} d ago  {e['tool']:5}  {packages}")
        return 0
    if args.older_than is None and not args.key and not args.all:
        raise UsageError("env prune: say what to remove: --older-than DAYS, --key KEY or --all")
    removed = prune(root, 0 if args.all else args.older_than, args.key) if root.is_dir() else []
    print(json.dumps(removed) if args.json else f"removed {len(removed)} environment(s) from {root}: {' '.join(removed)}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from .experiment import TensorFlow, prepare

    sub = prepare(TensorFlow.from_yaml(args.config, args.overrides).spec, args.backend)
    sys.stdout.write(sub.script)
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from .experiment import TensorFlow, prepare, runs_dir_from, submit

    sub = prepare(TensorFlow.from_yaml(args.config, args.overrides).spec, args.backend)
    print(f"hpc_tf: backend {sub.backend} ({sub.why})", file=sys.stderr)
    run = submit(sub, runs_dir_from(args.runs_dir, os.environ))
    status = run.dir.read_status()
    info = {"run_id": run.run_id, "job_id": status.get("job_id"), "run_dir": str(run.run_dir), "backend": sub.backend}
    if args.json and not args.wait:
        print(json.dumps(info))
    elif not args.json:
        print(f"submitted run {run.run_id} (job {info['job_id']}, {sub.backend}): {run.run_dir}")
    if not args.wait:
        return 0
    from .cli_runs import wait_and_report

    return wait_and_report(run, info if args.json else None, show_output=True)


def _commands() -> dict:
    from .cli_runs import COMMANDS as RUN_COMMANDS

    return {"submit": cmd_submit, "render": cmd_render, "validate": cmd_validate, "explain": cmd_explain,
            "env": cmd_env, **RUN_COMMANDS}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _commands()[args.command](args)
    except HpcTfError as exc:
        if args.debug:
            raise
        print(f"hpc_tf: error: {exc}", file=sys.stderr)
        return exc.exit_status
