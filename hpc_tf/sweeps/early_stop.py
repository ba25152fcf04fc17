"""Early termination of sweep trials, inside the job, with no controller process.

When rank 0 of a trial observes its primary metric (`hpc_tf.log`, the Keras callback, or the runtime
scraping `metric_patterns`), `observe` appends it to the trial's `metrics/primary.jsonl` (one line per
interval), reads its siblings' files from the shared runs directory (running siblings included, so the
first concurrent batch can be stopped), and applies the pure rule `core.policies.decide`. Every decision
goes to the trial's `policy.jsonl` with what it was computed from: the trial's own history length and
each sibling's history length at that moment. Histories only grow, so the exact inputs of any decision
are the prefixes of the final files (`recheck` recomputes them). A stop is recorded in status.json
(`early_stop`) and in `tasks/early-stop`, which the trial's other tasks watch.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import msgspec

from ..core import transitions
from ..core.records import EarlyStop, SweepRecord
from ..errors import RunError
from ..rundir import RunDir, read_bounded, utc_now, write_atomic
from .core.policies import Decision, decide, eligible
from .core.spec import PolicySpec
from .sweepdir import SweepDir


class TrialPolicy(msgspec.Struct, frozen=True):
    """What a trial needs to judge itself: its sweep, metric, goal and policy (read once from sweep.json)."""

    sweep_dir: str
    sweep_id: str
    metric: str
    goal: str
    policy: PolicySpec | None


def trial_policy(sweep_dir: str | Path) -> TrialPolicy:
    record: SweepRecord = SweepDir(sweep_dir).read()
    policy = msgspec.convert(record.policy, PolicySpec) if record.policy else None
    return TrialPolicy(str(sweep_dir), record.sweep_id, record.primary_metric_name, record.primary_metric_goal, policy)


def number(value: Any) -> float:
    """A logged value as a float (anything that is not a number counts as NaN: the worst a trial can report)."""
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer too large for a float
        return math.nan


def read_history(path: Path) -> list[float]:
    """The primary-metric values of one trial, in interval order (a line being written is skipped; one that cannot
    be read at all, nested too deep or a number of too many digits, is NaN: the worst a trial can report, as
    `sweep status` counts it). Only a regular file is read, and a bounded one (a FIFO would block, /dev/zero never
    end): anything else is no history."""
    try:
        text = read_bounded(path).decode("utf-8", errors="replace")
    except (RunError, OSError):
        return []
    values = []
    for line in text.splitlines():
        try:
            values.append(number(json.loads(line)["value"]))
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
        except (ValueError, RecursionError):
            values.append(math.nan)
    return values


def sibling_histories(trial: TrialPolicy, me: RunDir) -> dict[str, list[float]]:
    """Every other trial's primary-metric history, as it is now."""
    out = {}
    for run in SweepDir(trial.sweep_dir).trial_dirs():
        if run.path != me.path:
            history = read_history(run.primary_metric_file)
            if history:
                out[run.run_id] = history
    return out


def observe(run: RunDir, trial: TrialPolicy, value: Any) -> Decision | None:
    """Record one primary-metric value of this trial (rank 0); return the policy's decision when it applies."""
    run.metrics_dir.mkdir(exist_ok=True)
    mine = [*read_history(run.primary_metric_file), number(value)]
    _append(run.primary_metric_file, {"interval": len(mine), "value": _plain(value), "time": round(time.time(), 3)})
    policy = trial.policy
    if policy is None or run.early_stop_file.exists():
        return None
    if not any(eligible(policy, k) for k in range(1, len(mine) + 1)):
        return None
    siblings = sibling_histories(trial, run)
    decision = decide(policy, trial.goal, mine, siblings)
    entry: dict[str, Any] = {
        "decided_at": len(mine),
        "decision": msgspec.to_builtins(decision),
        "inputs": {"mine": len(mine), "siblings": {k: len(v) for k, v in sorted(siblings.items())}},
        "time": utc_now(),
    }
    if decision.terminate:
        entry["values"] = {"mine": mine, "siblings": siblings}
    _append(run.policy_log, entry)
    if decision.terminate:
        stop(run, decision, len(mine))
    return decision


def stop(run: RunDir, decision: Decision, decided_at: int) -> None:
    """Record the stop where everything looks: status.json and the file the trial's other tasks watch."""
    record = EarlyStop(
        rule=decision.rule,
        interval=decision.interval,
        decided_at=decided_at,
        value=decision.value,
        threshold=decision.threshold,
        best=decision.best,
        compared=decision.compared,
        reason=decision.reason,
        time=utc_now(),
    )
    run.transition(lambda s: transitions.early_stopped(s, record))
    run.tasks_dir.mkdir(exist_ok=True)
    write_atomic(run.early_stop_file, json.dumps(msgspec.to_builtins(record)) + "\n")


def recheck(sweep_dir: str | Path) -> list[tuple[str, dict[str, Any], Decision]]:
    """Recompute every recorded decision of a sweep from the final histories cut to the recorded lengths;
    returns (trial id, recorded decision, recomputed decision) for each."""
    trial = trial_policy(sweep_dir)
    runs = SweepDir(sweep_dir).trial_dirs()
    histories = {run.run_id: read_history(run.primary_metric_file) for run in runs}
    out = []
    for run in runs:
        if not (run.policy_log.exists() or run.policy_log.is_symlink()):
            continue
        for line in read_bounded(run.policy_log).decode("utf-8", errors="replace").splitlines():
            entry = json.loads(line)
            lengths = entry["inputs"]["siblings"]
            siblings = {k: histories.get(k, [])[:n] for k, n in lengths.items()}
            mine = histories[run.run_id][: entry["inputs"]["mine"]]
            out.append((run.run_id, entry["decision"], decide(trial.policy, trial.goal, mine, siblings)))
    return out


def _plain(value: Any) -> Any:
    number_value = number(value)
    return number_value if math.isfinite(number_value) else str(value)


def _append(path: Path, record: dict[str, Any]) -> None:
    """One `write` per line on a file opened for appending (one writer per trial: rank 0)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode())
    finally:
        os.close(fd)
