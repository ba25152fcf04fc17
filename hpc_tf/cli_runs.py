"""The run-following commands: `runs`, `status`, `logs`, `wait`, `cancel`, `metrics` (all with --json).

RUN is a run directory, a run id, or a unique prefix of a run id under the runs directory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .errors import JobFailedError, UsageError


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
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50; 0: all)")
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


def _run(args: argparse.Namespace) -> Any:
    from .runs import find_run

    return find_run(args.run, args.runs_dir)


def cmd_runs(args: argparse.Namespace) -> int:
    """One scheduler query refreshes every unfinished run listed."""
    from .experiment import runs_dir_from
    from .runs import Watcher, elapsed_seconds, list_runs

    root = runs_dir_from(args.runs_dir, os.environ)
    runs = list_runs(root, args.experiment)
    statuses = Watcher().refresh(runs)
    rows = [{**s, "run_dir": str(r.run_dir), "elapsed_seconds": elapsed_seconds(s)} for r, s in zip(runs, statuses)
            if not args.state or s.get("state") == args.state.upper()]
    rows = rows[: args.limit] if args.limit else rows
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print(f"no runs under {root}")
        return 0
    print(f"{'RUN':24} {'EXPERIMENT':18} {'STATE':11} {'EXIT':>4} {'JOB':>8} {'BACKEND':7} {'ELAPSED':>8}")
    for r in rows:
        print(f"{r.get('run_id', '?'):24} {r.get('experiment', '?')[:18]:18} {r.get('state', '?'):11} "
              f"{_dash(r.get('exit_code')):>4} {_dash(r.get('job_id')):>8} {r.get('backend', '?'):7} {_duration(r['elapsed_seconds']):>8}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from .runs import elapsed_seconds

    run = _run(args)
    status = run.status()
    tasks = run.tasks()
    if args.json:
        print(json.dumps({**status, "elapsed_seconds": elapsed_seconds(status), "tasks": tasks}))
        return 0
    for key in ("run_id", "experiment", "state", "exit_code", "job_id", "backend", "nodes", "submit_time", "start_time", "end_time"):
        print(f"{key:13} {_dash(status.get(key))}")
    print(f"{'elapsed':13} {_duration(elapsed_seconds(status))}")
    if status.get("first_failure"):
        f = status["first_failure"]
        print(f"{'first failure':13} rank {f['rank']} ({f['role']} {f['index']}) on {f['host']}: exit {f['exit_code']}"
              + (f" ({f['note']})" if f.get("note") else ""))
    if tasks:
        print("tasks:")
        for t in tasks:
            print(f"  rank {t['rank']:<3} {t['role']:9} {t['index']:<3} {t['host']:10} exit {_dash(t.get('exit_code'))}"
                  + ("  (stopped after the chief)" if t.get("stopped_after_chief") else ""))
    print(f"{'run_dir':13} {run.run_dir}")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from .runs import LogFollower, Watcher

    run = _run(args)
    follower = LogFollower(run.dir, sys.stdout, sys.stderr, all_ranks=args.all, rank=args.rank)
    follower.pump()
    if not args.follow:
        return 0
    watcher = Watcher()
    while not watcher.poll([run])[0].get("final"):
        time.sleep(0.2)
        follower.pump()
    follower.pump()
    return 0


def cmd_wait(args: argparse.Namespace) -> int:
    run = _run(args)
    return wait_and_report(run, {"run_id": run.run_id, "run_dir": str(run.run_dir)} if args.json else None,
                           show_output=args.show_output)


def wait_and_report(run: Any, json_info: dict | None, show_output: bool) -> int:
    """Wait for a run; progress on a terminal, plain lines otherwise; exit with the job's exit code."""
    out = sys.stderr if json_info is not None else sys.stdout
    progress = _Progress(run, sys.stderr)
    try:
        status = run.wait_for_completion(show_output=show_output, raise_on_error=False, out=out, err=sys.stderr,
                                         progress=None if show_output else progress)
    except KeyboardInterrupt:
        print(f"\nhpc_tf: stopped waiting; the job goes on (python -m hpc_tf wait {run.run_dir})", file=sys.stderr)
        return 130
    progress.done()
    code = 0 if status.get("state") == "COMPLETED" else (status.get("exit_code") or 1)
    if json_info is not None:
        print(json.dumps({**json_info, "state": status.get("state"), "exit_code": status.get("exit_code")}))
    if status.get("state") != "COMPLETED":
        error = JobFailedError(str(run.run_dir), status.get("state", "UNKNOWN"), status.get("exit_code"), run.stderr_tail())
        print(f"hpc_tf: {error}", file=sys.stderr)
    else:
        print(f"hpc_tf: run {run.run_id} COMPLETED", file=sys.stderr)
    return code


class _Progress:
    """`RUNNING 0:01:23 loss=0.1234 (step 4)`: one line rewritten in place on a terminal; elsewhere a
    plain line each time the state changes."""

    def __init__(self, run: Any, stream: Any) -> None:
        self.run, self.stream, self.tty = run, stream, stream.isatty()
        self.last_state: str | None = None
        self.shown = False
        self._metric, self._metric_read = "", 0.0

    def __call__(self, status: dict[str, Any]) -> None:
        from .runs import elapsed_seconds

        state = status.get("state", "?")
        if self.tty:
            if time.monotonic() - self._metric_read > 1.0:  # metrics files can be long: once a second
                self._metric, self._metric_read = self._last_metric(), time.monotonic()
            line = f"{state:10} {_duration(elapsed_seconds(status)):>8}  {self._metric}"
            self.stream.write("\r" + line[:120].ljust(80))
            self.stream.flush()
            self.shown = True
        elif state != self.last_state and not status.get("final"):  # the final state is reported by the caller
            self.stream.write(f"hpc_tf: run {self.run.run_id} {state}\n")
            self.stream.flush()
        self.last_state = state

    def _last_metric(self) -> str:
        from .metrics import read_metrics

        metrics = read_metrics(self.run.dir)
        latest = max(((name, p) for name, points in metrics.items() for p in points),
                     key=lambda item: item[1].get("time") or 0, default=None)
        if latest is None:
            return ""
        name, point = latest
        value = point["value"]
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        return f"{name}={text}" + (f" (step {point['step']})" if point.get("step") is not None else "")

    def done(self) -> None:
        if self.shown:
            self.stream.write("\n")


def cmd_cancel(args: argparse.Namespace) -> int:
    run = _run(args)
    run.cancel()
    print(f"hpc_tf: cancellation requested for run {run.run_id}", file=sys.stderr)
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from .metrics import plot

    run = _run(args)
    metrics = run.get_metrics()
    if args.plot:
        plot(metrics, Path(args.plot), f"{run.dir.experiment} / {run.run_id}")
        print(f"hpc_tf: plotted {len(metrics)} metric(s) to {args.plot}", file=sys.stderr)
    if args.json:
        print(json.dumps(metrics))
    elif not args.plot:
        for name, points in sorted(metrics.items()):
            last = points[-1]
            print(f"{name:24} {len(points):5} points  last {last['value']}" + (f" (step {last['step']})" if last.get("step") is not None else ""))
    return 0


COMMANDS = {"runs": cmd_runs, "status": cmd_status, "logs": cmd_logs, "wait": cmd_wait, "cancel": cmd_cancel,
            "metrics": cmd_metrics}


def _dash(value: Any) -> str:
    return "-" if value is None or value == [] else (",".join(value) if isinstance(value, list) else str(value))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


__all__ = ["add_commands", "COMMANDS", "wait_and_report", "UsageError"]
