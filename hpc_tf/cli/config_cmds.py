"""The config commands: `submit`, `render`, `validate`, `explain CONFIG`, and `env list|prune`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import UsageError
from ..settings import Settings
from .text import json_line


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    def config_cmd(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text)
        p.add_argument("config", help="estimator config (YAML)")
        p.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a config key (dotted keys, YAML values); repeatable",
        )
        return p

    p = config_cmd("submit", "validate, snapshot, render and submit a job")
    _backend_opt(p)
    p.add_argument("--runs-dir", help="where run directories go (default: $HPC_TF_RUNS_DIR or ./runs)")
    p.add_argument("--wait", action="store_true", help="stream the job's output until it ends; exit with its exit code")
    p.add_argument("--json", action="store_true", help="print {run_id, job_id, run_dir, backend} as JSON")
    p = config_cmd("render", "print the job script that submit would submit (asks no scheduler)")
    _backend_opt(p)
    config_cmd("validate", "check a config and report every problem")
    p = config_cmd("explain", "show which task runs where, as what, on which port and GPUs")
    p.add_argument("--nodelist", help="the allocation's nodes as a Slurm hostlist (default: node[1-N])")
    p.add_argument("--job-id", type=int, default=None, help="job id the ports are derived from (default: show offsets)")
    p.add_argument(
        "--gpus-per-node", type=_gpus, default=None, help="GPUs Slurm makes visible per node (default: from the config)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = sub.add_parser("env", parents=[common], help="list or prune the cached job environments")
    p.add_argument("action", choices=["list", "prune"])
    p.add_argument("--older-than", type=float, metavar="DAYS", help="prune: environments unused for this many days")
    p.add_argument("--key", action="append", default=[], help="prune: this environment (repeatable)")
    p.add_argument("--all", action="store_true", help="prune: every environment")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _backend_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "slurm", "local"],
        help="auto (default): the compute_target's, else Slurm if a cluster answers, else local",
    )


def _gpus(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 64:
        raise argparse.ArgumentTypeError(f"{value} is not valid; expected 0 to 64 GPUs per node")
    return value


def _estimator(args: argparse.Namespace, settings: Settings) -> Any:
    from ..api import TensorFlow

    return TensorFlow.from_yaml(args.config, args.overrides, settings)


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    est = _estimator(args, settings)
    target = est.target()
    sweep = est.sweep
    what = f", a {sweep.sampling} sweep of {sweep.trial_count} trials on {sweep.primary_metric_name!r}" if sweep else ""
    print(f"{args.config}: valid (experiment {est.spec.experiment!r}, compute target {target.name!r}{what})")
    if sweep is not None:
        from ..sweeps.submit import metric_warning

        warning = metric_warning(est.spec, sweep, est.sweep_key)
        if warning:
            print(f"hpc_tf: warning: {warning}", file=sys.stderr)
    return 0


def cmd_explain(args: argparse.Namespace, settings: Settings) -> int:
    from ..runs.explain import explain_rows, format_rows

    est = _estimator(args, settings)
    rows = explain_rows(est.spec, est.target(), args.nodelist, args.job_id, args.gpus_per_node)
    print(json_line(rows) if args.json else format_rows(est.spec, rows, args.job_id))
    if est.spec.roles:  # on stderr: --json's output stays the rows
        from ..runs.explain import het_site_notes

        print("\n".join(het_site_notes(settings)), file=sys.stderr)
    return 0


def cmd_env(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from ..envs.cache import list_envs, prune

    root = settings.env_cache
    if args.action == "list":
        envs = list_envs(root) if root.is_dir() else []
        if args.json:
            print(json_line(envs))
            return 0
        print(f"environments in {root}:" if envs else f"no environments in {root}")
        for e in envs:
            age = (time.time() - e["last_used"]) / 86400
            packages = " ".join(e["request"]["packages"]) or "(requirements file)"
            print(f"  {e['key']}  {e['size_bytes'] / 2**20:7.1f} MiB  used {age:5.1f} d ago  {e['tool']:5}  {packages}")
        return 0
    if args.older_than is None and not args.key and not args.all:
        raise UsageError("env prune: say what to remove: --older-than DAYS, --key KEY or --all")
    if args.older_than is not None and not 0 <= args.older_than < 1e6:
        raise UsageError(f"env prune --older-than: {args.older_than} is not valid; expected days, >= 0")
    removed = prune(root, 0 if args.all else args.older_than, args.key) if root.is_dir() else []
    print(
        json_line(removed) if args.json else f"removed {len(removed)} environment(s) from {root}: {' '.join(removed)}"
    )
    return 0


def cmd_render(args: argparse.Namespace, settings: Settings) -> int:
    from ..runs.submit import prepare

    est = _estimator(args, settings)
    if est.sweep is not None:
        from ..sweeps.submit import first_script, prepare_sweep

        sys.stdout.write(first_script(prepare_sweep(est.spec, est.sweep, settings, args.backend, False), settings))
        return 0
    sub = prepare(est.spec, settings, args.backend, probe=False)
    sys.stdout.write(sub.script)
    if est.spec.roles:  # rendered without asking the cluster: say what submit may change
        print(
            "hpc_tf: rendered with one step across the components; where the cluster sets "
            "SchedulerParameters=disable_hetjob_steps, submit starts one step per component (hpc_tf explain says "
            "which this cluster does)",
            file=sys.stderr,
        )
    return 0


def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    from ..runs.submit import prepare, submit

    est = _estimator(args, settings)
    if est.sweep is not None:
        return _submit_sweep(args, settings, est)
    sub = prepare(est.spec, settings, args.backend)
    print(f"hpc_tf: backend {sub.backend} ({sub.backend_reason})", file=sys.stderr)
    run = submit(sub, settings)
    status = run.read_status()
    info = {"run_id": run.run_id, "job_id": status.job_id, "run_dir": str(run.path), "backend": sub.backend}
    if args.json and not args.wait:
        print(json_line(info))
    elif not args.json:
        print(f"submitted run {run.run_id} (job {status.job_id}, {sub.backend}): {run.path}")
    if not args.wait:
        return 0
    from ..runs.follow import Run
    from .run_cmds import wait_and_report

    return wait_and_report(Run(run, settings), info if args.json else None, show_output=True)


def _submit_sweep(args: argparse.Namespace, settings: Settings, est: Any) -> int:
    """A config with a hyperdrive: block: its trials as Slurm job arrays; prints the sweep id."""
    from ..sweeps.submit import metric_warning, prepare_sweep, submit_sweep

    sub = prepare_sweep(est.spec, est.sweep, settings, args.backend, key=est.sweep_key)
    print(f"hpc_tf: backend {sub.backend} ({sub.backend_reason})", file=sys.stderr)
    warning = metric_warning(est.spec, est.sweep, est.sweep_key)
    if warning:
        print(f"hpc_tf: warning: {warning}", file=sys.stderr)
    sweep_dir = submit_sweep(sub, settings)
    record = sweep_dir.read()
    ids = [c.job_id for c in record.chunks if c.job_id]
    info = {
        "sweep_id": sweep_dir.sweep_id,
        "array_job_ids": ids,
        "sweep_dir": str(sweep_dir.path),
        "trials": record.trial_count,
    }
    if args.json:
        print(json_line(info))
    else:
        arrays = ", ".join(ids)
        print(
            f"submitted sweep {sweep_dir.sweep_id} ({record.trial_count} trials, array job {arrays}): {sweep_dir.path}"
        )
    if not args.wait:
        return 0
    from ..sweeps.run import SweepRun

    status = SweepRun(sweep_dir, settings).wait_for_completion()
    print(f"hpc_tf: sweep {status.sweep_id} {status.state} {status.counts}", file=sys.stderr)
    return 0 if status.state == "COMPLETED" else 1


COMMANDS = {
    "submit": cmd_submit,
    "render": cmd_render,
    "validate": cmd_validate,
    "explain": cmd_explain,
    "env": cmd_env,
}
