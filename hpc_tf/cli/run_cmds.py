"""The run-following commands: `runs`, `status`, `logs`, `wait`, `cancel`, `metrics` (all with --json).

RUN is a run directory, a run id, or a unique prefix of a run id under the runs directory.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from ..core.records import EARLY_TERMINATED
from ..errors import JobFailedError
from .text import dash as _dash
from .text import duration as _duration
from .text import json_line, unreachable_text

if TYPE_CHECKING:  # the parser is built for every command: what the run commands use is imported when they run
    from ..runs.follow import Run
    from ..settings import Settings


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    def run_cmd(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text)
        p.add_argument("run", help="run directory, run id, or a unique prefix of a run id")
        p.add_argument("--runs-dir", help="where run ids are looked up (default: $HPC_TF_RUNS_DIR or ./runs)")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    p = sub.add_parser("runs", parents=[common], help="list runs, newest first")
    p.add_argument("--runs-dir", help="default: $HPC_TF_RUNS_DIR or ./runs")
    p.add_argument("--experiment", help="only this experiment")
    p.add_argument("--state", help="only runs in this state (e.g. RUNNING, FAILED)")
    p.add_argument("--sweep", help="only the trials of this sweep (its id)")
    p.add_argument("--limit", type=_limit, default=50, help="at most this many (default 50; 0: all)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    run_cmd("status", "show a run's status, with its tasks")
    p = run_cmd("logs", "print a run's logs")
    p.add_argument("--rank", type=int, default=0, help="this rank's stdout and stderr (default 0)")
    p.add_argument("--all", action="store_true", help="every rank, each line prefixed with its rank")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until the run ends")
    p = run_cmd("wait", "wait for a run to end; exit with its exit code")
    p.add_argument("--show-output", action="store_true", help="stream rank 0's output while waiting")
    run_cmd("cancel", "cancel a run")
    p = run_cmd("metrics", "print a run's metrics (hpc_tf.log and metric_patterns)")
    p.add_argument("--plot", metavar="FILE.png", help="draw them into a PNG (needs matplotlib)")


def _limit(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is not valid; expected 0 (all) or more")
    return value


def _run(args: argparse.Namespace, settings: Settings) -> Run:
    from ..runs.follow import find_run

    return find_run(args.run, settings)


def cmd_runs(args: argparse.Namespace, settings: Settings) -> int:
    """One scheduler query refreshes every unfinished run listed."""
    from ..runs.follow import DAMAGED, Watcher, list_runs
    from .text import elapsed_seconds, status_dict

    runs = list_runs(settings, args.experiment)
    statuses = Watcher(settings).refresh(runs)
    pairs = [
        (r, s)
        for r, s in zip(runs, statuses, strict=True)
        if (not args.state or s.state == args.state.upper()) and (not args.sweep or s.sweep == args.sweep)
    ]
    pairs = pairs[: args.limit] if args.limit else pairs
    if args.json:
        print(
            json_line(
                [{**status_dict(s), "run_dir": str(r.run_dir), "elapsed_seconds": elapsed_seconds(s)} for r, s in pairs]
            )
        )
        return _say_unlisted(settings, args.experiment)
    if not pairs:
        print(f"no runs under {settings.runs_dir}")
        return _say_unlisted(settings, args.experiment)
    print(f"{'RUN':24} {'EXPERIMENT':18} {'STATE':16} {'EXIT':>4} {'JOB':>10} {'BACKEND':7} {'ELAPSED':>8}")
    for r, s in _grouped(pairs):
        indent = "  " if s.sweep else ""
        print(
            f"{indent + (s.run_id or r.run_id):24} {(s.experiment or r.dir.experiment)[:18]:18} {s.state:16} "
            f"{_dash(s.exit_code):>4} {_dash(s.job_id):>10} {s.backend or '?':7} {_duration(elapsed_seconds(s)):>8}"
        )
    notes = {unreachable_text(s) for _, s in pairs if s.scheduler_unreachable_since}
    damaged = [(r, s) for r, s in pairs if s.state == DAMAGED]
    for note in sorted(notes):
        print(f"hpc_tf: {note}", file=sys.stderr)
    for r, s in damaged:
        print(f"hpc_tf: {r.run_dir}: {s.message}", file=sys.stderr)
    return _say_unlisted(settings, args.experiment)


def _say_unlisted(settings: Settings, experiment: str | None) -> int:
    """Experiment folders that cannot be listed, on stderr (a damaged folder is said, never fatal): exit 0."""
    from ..runs.follow import unlisted

    sys.stdout.flush()
    for text in unlisted(settings, experiment):
        print(f"hpc_tf: {text}", file=sys.stderr)
    return 0


def _grouped(pairs: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Trials under their sweep (in trial order, where the sweep's newest trial would be listed)."""
    out: list[tuple[Any, Any]] = []
    placed: set[str] = set()
    for r, s in pairs:
        if not s.sweep:
            out.append((r, s))
        elif s.sweep not in placed:
            placed.add(s.sweep)
            trials = [(r2, s2) for r2, s2 in pairs if s2.sweep == s.sweep]
            header = msgspec.structs.replace(s, run_id=f"sweep {s.sweep}", state=f"{len(trials)} trials", sweep=None)
            out.append((r, msgspec.structs.replace(header, exit_code=None, job_id=None, start_time=None)))
            out += sorted(trials, key=lambda pair: pair[1].trial_index or 0)
    return out


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from .text import elapsed_seconds, status_dict

    run = _run(args, settings)
    status = run.status()
    tasks = run.tasks()
    if args.json:
        print(
            json_line(
                {
                    **status_dict(status),
                    "elapsed_seconds": elapsed_seconds(status),
                    "tasks": [status_dict(t) for t in tasks],
                }
            )
        )
        return 0
    for key in (
        "run_id",
        "experiment",
        "state",
        "exit_code",
        "job_id",
        "backend",
        "nodes",
        "submit_time",
        "start_time",
        "end_time",
    ):
        print(f"{key:13} {_dash(getattr(status, key))}")
    print(f"{'elapsed':13} {_duration(elapsed_seconds(status))}")
    for key in ("restarts", "note", "reason", "message", "sweep", "trial_index"):
        if getattr(status, key) not in (None, "", 0) or (key == "trial_index" and status.sweep):
            by_cause = ", ".join(f"{c} {n}" for c, n in status.restarts_by_cause.items()) if key == "restarts" else ""
            print(f"{key:13} {getattr(status, key)}" + (f" ({by_cause})" if by_cause else ""))
    if status.early_stop is not None:
        e = status.early_stop
        print(f"{'early stop':13} {e.rule} at interval {e.interval} (decided at {e.decided_at}): {e.reason}")
    if status.scheduler_unreachable_since:
        print(f"{'scheduler':13} {unreachable_text(status)}")
    f = status.first_failure
    if f is not None:
        print(
            f"{'first failure':13} rank {f.rank} ({f.role} {f.index}) on {f.host}: exit {f.exit_code}"
            + (f" ({f.note})" if f.note else "")
        )
    if len(status.attempts) > 1 or any(a.cause for a in status.attempts):
        print("attempts:")
        for a in status.attempts:
            end = f" - {a.end}" if a.end else ""
            why = f": {a.cause}, {a.requeue}" if a.cause else ""
            print(f"  {a.n:<3} job {a.job_id or '-'} on {','.join(a.nodes) or '?'} {a.start or '-'}{end}{why}")
    if tasks:
        print("tasks:")
        for t in tasks:
            print(
                f"  rank {t.rank:<3} {t.role:9} {t.index:<3} {t.host:10} exit {_dash(t.exit_code)}"
                + ("  (stopped after the chief)" if t.stopped_after_chief else "")
            )
    print(f"{'run_dir':13} {run.run_dir}")
    return 0


def cmd_logs(args: argparse.Namespace, settings: Settings) -> int:
    from ..runs.follow import Watcher
    from ..runs.logs import LogFollower

    run = _run(args, settings)
    follower = LogFollower(run.dir, sys.stdout, sys.stderr, all_ranks=args.all, rank=args.rank)
    follower.pump()
    if args.follow:
        gc.enable()  # a long wait (hpc_tf/__main__.py turned it off for short commands)
        watcher = Watcher(settings)
        while not watcher.poll([run])[0].final:
            time.sleep(0.2)
            follower.pump()
        follower.pump()
    return 1 if follower.problems else 0  # a log that is there but cannot be read (said on stderr)


def cmd_wait(args: argparse.Namespace, settings: Settings) -> int:
    run = _run(args, settings)
    return wait_and_report(
        run, {"run_id": run.run_id, "run_dir": str(run.run_dir)} if args.json else None, show_output=args.show_output
    )


def wait_and_report(run: Run, json_info: dict[str, Any] | None, show_output: bool) -> int:
    """Wait for a run; progress on a terminal, plain lines otherwise; exit with the job's exit code."""
    gc.enable()  # a long wait (hpc_tf/__main__.py turned it off for short commands)
    out = sys.stderr if json_info is not None else sys.stdout
    from .progress import Progress

    progress = Progress(run, sys.stderr)
    try:
        status = run.wait_for_completion(
            show_output=show_output,
            raise_on_error=False,
            out=out,
            err=sys.stderr,
            progress=progress.unreachable if show_output else progress,
        )
    except KeyboardInterrupt:
        print(f"\nhpc_tf: stopped waiting; the job goes on (python -m hpc_tf wait {run.run_dir})", file=sys.stderr)
        return 130
    progress.done()
    ok = status.state in ("COMPLETED", EARLY_TERMINATED)  # a trial its sweep's policy stopped ended cleanly
    code = 0 if ok else (status.exit_code or 1)
    if json_info is not None:
        print(json_line({**json_info, "state": status.state, "exit_code": status.exit_code}))
    if not ok:
        print(
            f"hpc_tf: {JobFailedError(str(run.run_dir), status.state, status.exit_code, run.stderr_tail())}",
            file=sys.stderr,
        )
    else:
        print(f"hpc_tf: run {run.run_id} {status.state}", file=sys.stderr)
    return code


def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 once the scheduler was asked to end the job; a run that already ended (or has no job yet) is an
    error naming its state (exit 1: nothing was sent)."""
    from ..errors import RunError
    from ..runs.follow import cancel_refusal, usable_status

    run = _run(args, settings)
    if not run.cancel():  # read again: the reason is the status that made cancel() send nothing
        why = cancel_refusal(usable_status(run.dir)) or "had no job yet"
        raise RunError(f"run {run.run_id} {why}: nothing to cancel")
    print(f"hpc_tf: cancellation requested for run {run.run_id}", file=sys.stderr)
    return 0


def cmd_metrics(args: argparse.Namespace, settings: Settings) -> int:
    from ..metrics import plot

    run = _run(args, settings)
    metrics = run.get_metrics()
    if args.plot:
        plot(metrics, Path(args.plot), f"{run.dir.experiment} / {run.run_id}")
        print(f"hpc_tf: plotted {len(metrics)} metric(s) to {args.plot}", file=sys.stderr)
    if args.json:
        print(json_line(metrics))
    elif not args.plot:
        for name, points in sorted(metrics.items()):
            last = points[-1]
            print(
                f"{name:24} {len(points):5} points  last {last['value']}"
                + (f" (step {last['step']})" if last.get("step") is not None else "")
            )
    return 0


COMMANDS = {
    "runs": cmd_runs,
    "status": cmd_status,
    "logs": cmd_logs,
    "wait": cmd_wait,
    "cancel": cmd_cancel,
    "metrics": cmd_metrics,
}
