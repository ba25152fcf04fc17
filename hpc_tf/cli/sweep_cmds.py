"""`python -m hpc_tf sweep ACTION SWEEP`: status, wait, best, cancel, throttle N, plot, hparams, recheck.

SWEEP is a sweep directory, a sweep id, or a unique prefix of one under the runs directory. A sweep is
submitted with `python -m hpc_tf submit CONFIG` when CONFIG has a `hyperdrive:` (or `sweep:`) block.

Damaged records (a trial's status.json or metrics, the sweep's deadline or trial count, a stray folder) affect
their own line only: the trial is marked (state DAMAGED, or `DAMAGED` after its row), each reason goes to
stderr as `hpc_tf: ...` (and into `damaged` with --json), and the exit status is what it would be otherwise:
status 0; wait 0 once the sweep is COMPLETED, else 1; best 0 with the best of the undamaged trials.
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from ..errors import RunError, UsageError
from .text import json_line

if TYPE_CHECKING:
    from ..settings import Settings
    from ..sweeps.run import SweepRun, SweepStatus, TrialView

ACTIONS = ("status", "wait", "best", "cancel", "throttle", "plot", "hparams", "recheck")


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("sweep", parents=[common], help="follow or change a sweep (status, best, cancel, throttle, ...)")
    p.add_argument("action", choices=ACTIONS, help="what to do")
    p.add_argument("sweep", help="sweep directory, sweep id, or a unique prefix of a sweep id")
    p.add_argument("value", nargs="?", help="throttle: the new max_concurrent_runs")
    p.add_argument("--runs-dir", help="where sweep ids are looked up (default: $HPC_TF_RUNS_DIR or ./runs)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--exclude-failed", action="store_true", help="best: leave failed trials out")
    p.add_argument("--exclude-canceled", action="store_true", help="best: leave cancelled and early-stopped out")
    p.add_argument("--out", help="plot: folder for the PNGs (default: the sweep's plots/)")
    p.add_argument("--timeout", type=float, help="wait: give up after this many seconds")


def cmd_sweep(args: argparse.Namespace, settings: Settings) -> int:
    from ..sweeps.run import SweepRun

    sweep = SweepRun.get(args.sweep, settings.runs_dir)
    if args.action != "throttle" and args.value is not None:
        raise UsageError(f"sweep {args.action}: unexpected argument {args.value!r}")
    handler = {
        "status": _status,
        "wait": _wait,
        "best": _best,
        "cancel": _cancel,
        "throttle": _throttle,
        "plot": _plot,
        "hparams": _hparams,
        "recheck": _recheck,
    }[args.action]
    return handler(sweep, args)


def _status(sweep: SweepRun, args: argparse.Namespace) -> int:
    status = sweep.status()
    if args.json:
        print(json_line(msgspec.to_builtins(status)))
        _say_damage(status)
        return 0
    _print_summary(status)
    for t in status.trials:
        metric = "-" if t.metric is None else f"{t.metric:.6g}"
        flags = " ".join(f"{k} {v}" for k, v in t.hyperparameters.items())
        stop = f"  stopped at {t.early_stop.interval}: {t.early_stop.rule}" if t.early_stop else ""
        mark = "  DAMAGED" if t.damaged and t.state != "DAMAGED" else ""
        print(
            f"  {t.index:>5} {t.state:16} {t.job_id or '-':>12} {metric:>12} {len(t.history):>4}  {flags}{stop}{mark}"
        )
    _say_damage(status)
    return 0


def _say_damage(status: SweepStatus) -> None:
    """Each damaged record's reason on stderr, as `runs` does (stdout only marks them)."""
    sys.stdout.flush()
    for text in status.damaged:
        print(f"hpc_tf: {text}", file=sys.stderr)
    for t in status.trials:
        if t.damaged:
            print(f"hpc_tf: trial {t.index} ({t.trial_id}) damaged: {t.damaged}", file=sys.stderr)


def _print_summary(status: SweepStatus) -> None:
    counts = ", ".join(f"{n} {state}" for state, n in sorted(status.counts.items()))
    print(f"sweep {status.sweep_id} ({status.experiment}): {status.state}  [{counts}]")
    print(
        f"  primary metric {status.primary_metric_name} ({status.primary_metric_goal}), "
        f"max_concurrent_runs {status.max_concurrent_runs or 'all'}, arrays {' '.join(status.array_job_ids) or '-'}"
    )
    for label, text in (("stopped", status.stopped), ("message", status.message)):
        if text:
            print(f"  {label}: {text}")
    if status.scheduler_error:
        print(f"  the scheduler did not answer ({status.scheduler_error}): states as last recorded")
    print(f"  {'TRIAL':>5} {'STATE':16} {'JOB':>12} {'METRIC':>12} {'N':>4}  HYPERPARAMETERS")


def _wait(sweep: SweepRun, args: argparse.Namespace) -> int:
    gc.enable()
    status = sweep.wait_for_completion(timeout=args.timeout)
    if args.json:
        print(json_line(msgspec.to_builtins(status)))
    else:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(status.counts.items()))
        print(f"hpc_tf: sweep {status.sweep_id} {status.state} [{counts}]", file=sys.stderr)
    _say_damage(status)
    return 0 if status.state == "COMPLETED" else 1


def _best(sweep: SweepRun, args: argparse.Namespace) -> int:
    from ..sweeps.run import best_trial

    status = sweep.status()
    _say_damage(status)
    best = best_trial(status, not args.exclude_failed, not args.exclude_canceled)
    if best is None:
        raise UsageError(f"no trial of sweep {sweep.sweep_id} has logged {status.primary_metric_name!r} yet")
    if args.json:
        print(json_line({**msgspec.to_builtins(best), "primary_metric_name": status.primary_metric_name}))
        return 0
    print(f"best trial {best.trial_id} ({best.state}): {status.primary_metric_name} = {best.metric}")
    for flag, value in best.hyperparameters.items():
        print(f"  {flag} {value}")
    print(f"  run_dir {best.run_dir}")
    return 0


def _cancel(sweep: SweepRun, args: argparse.Namespace) -> int:
    sweep.cancel()
    print(f"hpc_tf: sweep {sweep.sweep_id} cancelled (every pending and running trial)", file=sys.stderr)
    return 0


def _throttle(sweep: SweepRun, args: argparse.Namespace) -> int:
    text = args.value or ""
    if not text.isdigit() or not 1 <= int(text) <= 100000:
        raise UsageError(f"sweep throttle: max_concurrent_runs must be a whole number from 1 to 100000, got {text!r}")
    sweep.throttle(int(text))
    print(f"hpc_tf: sweep {sweep.sweep_id}: at most {text} trials at once from now on", file=sys.stderr)
    return 0


def _plot(sweep: SweepRun, args: argparse.Namespace) -> int:
    from ..sweeps.report import plot_curves, plot_params

    status = sweep.status()
    out = Path(args.out) if args.out else sweep.dir.plots
    out.mkdir(parents=True, exist_ok=True)
    trials = _results(status.trials)
    curves = plot_curves(trials, status.primary_metric_name, out / "curves.png")
    params = plot_params(trials, status.primary_metric_name, status.primary_metric_goal, out / "params.png")
    print(json_line({"curves": str(curves), "params": str(params)}) if args.json else f"{curves}\n{params}")
    return 0


def _hparams(sweep: SweepRun, args: argparse.Namespace) -> int:
    from ..sweeps.core.spec import ParamExpr
    from ..sweeps.report import write_hparams

    status = sweep.status()
    record = sweep.record()
    space = {flag: msgspec.convert(expr, ParamExpr) for flag, expr in record.parameter_space.items()}
    trials = [t for t in _results(status.trials) if t.history or t.state != "PENDING"]
    root = write_hparams(sweep.dir.tensorboard, space, record.primary_metric_name, record.primary_metric_goal, trials)
    print(f"hpc_tf: {len(trials)} trials written for TensorBoard: tensorboard --logdir {root}", file=sys.stderr)
    return 0


def _recheck(sweep: SweepRun, args: argparse.Namespace) -> int:
    """Recompute every recorded policy decision from the recorded inputs; exit 1 if any differs."""
    from ..sweeps.early_stop import recheck

    try:
        rows = recheck(sweep.dir.path)
    except (ValueError, KeyError, TypeError, RecursionError, OverflowError) as exc:  # a damaged trial's files
        raise RunError(
            f"sweep {sweep.sweep_id}: a policy.jsonl or primary.jsonl cannot be rechecked: {exc!r:.300}"
        ) from None
    differ = [(t, rec, new) for t, rec, new in rows if rec != msgspec.to_builtins(new)]
    if args.json:
        print(json_line({"decisions": len(rows), "differ": [t for t, _, _ in differ]}))
    else:
        print(f"{len(rows)} decisions rechecked, {len(differ)} differ", file=sys.stderr)
    return 1 if differ else 0


def _results(trials: list[TrialView]) -> list[Any]:
    from ..sweeps.report import TrialResult

    return [
        TrialResult(
            index=t.index, trial_id=t.trial_id, state=t.state, hyperparameters=t.hyperparameters, history=t.history
        )
        for t in trials
    ]


COMMANDS = {"sweep": cmd_sweep}
