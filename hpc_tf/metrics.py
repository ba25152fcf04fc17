"""Metrics: `hpc_tf.log(name, value, step)` inside the job; reading, stdout scraping and plots outside.

Each rank appends JSON lines to `<run_dir>/metrics/rank-N.jsonl`, one `write` per line on a file
opened for appending, so several processes (and threads) can log at once without mixing lines.
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import RunError, UsageError

if TYPE_CHECKING:
    from .rundir import RunDir

_warned = False


class EarlyTermination(SystemExit):
    """Raised by `hpc_tf.log` in a sweep trial its early-termination policy stopped: the script exits with
    status 0 and the trial ends EARLY_TERMINATED. Catch it to save something first, then exit."""

    def __init__(self, reason: str) -> None:
        super().__init__(0)
        self.reason = reason


def log(name: str, value: Any, step: int | None = None) -> None:
    """Record a metric of the current run (Azure ML's `run.log`). Outside an hpc_tf job: a warning, nothing
    recorded. In a sweep trial, logging the primary metric on rank 0 applies the sweep's policy, and raises
    EarlyTermination when it stops the trial (the Keras callback stops training instead)."""
    stop = record(name, value, step)
    if stop is not None:
        raise EarlyTermination(stop)


def record(name: str, value: Any, step: int | None = None) -> str | None:
    """`log` without the exit: returns why the sweep's policy stopped this trial, or None."""
    global _warned
    run_dir = os.environ.get("HPC_TF_RUN_DIR")
    if not run_dir:
        if not _warned:
            warnings.warn(
                "hpc_tf.log: not inside an hpc_tf run (HPC_TF_RUN_DIR is unset): metrics are not recorded", stacklevel=3
            )
            _warned = True
        return None
    rank = int(os.environ.get("HPC_TF_RANK", "0"))
    line = {"name": str(name), "value": _plain(value), "step": step, "rank": rank, "time": round(time.time(), 3)}
    from .rundir import RunDir

    run = RunDir(run_dir)
    path = run.metrics_file(rank)
    path.parent.mkdir(exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)
    if rank != 0 or str(name) != os.environ.get("HPC_TF_PRIMARY_METRIC") or not os.environ.get("HPC_TF_SWEEP_DIR"):
        return None
    from .sweeps.early_stop import observe

    decision = observe(run, _trial_policy(os.environ["HPC_TF_SWEEP_DIR"]), value)
    return decision.reason or "stopped by the sweep's policy" if decision is not None and decision.terminate else None


_policies: dict[str, Any] = {}


def _trial_policy(sweep_dir: str) -> Any:
    """The sweep's policy, read once per process."""
    if sweep_dir not in _policies:
        from .sweeps.early_stop import trial_policy

        _policies[sweep_dir] = trial_policy(sweep_dir)
    return _policies[sweep_dir]


def _plain(value: Any) -> Any:
    """Numbers (Python, NumPy or TensorFlow scalars) as float/int; anything else as text."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def read_metrics(run: RunDir) -> dict[str, list[dict[str, Any]]]:
    """name → points (value, step, rank, time) from every rank's metrics file, then stdout scraping."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(run.metrics_dir.glob("rank-*.jsonl")):
        try:  # a regular file only: a FIFO would never answer, a directory is no metrics file
            text = path.read_text(errors="replace") if path.is_file() else ""
        except OSError:
            continue
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):  # being written now; or damaged (too deep, too many digits)
                continue
            if not isinstance(record, dict) or "name" not in record:
                continue
            found.setdefault(record.pop("name"), []).append(record)
    for name, points in scrape(run).items():
        found.setdefault(name, []).extend(points)
    return found


def scrape(run: RunDir) -> dict[str, list[dict[str, Any]]]:
    """metric_patterns (name → regex with one group) applied to rank 0's stdout, in order."""
    try:
        patterns = run.read_job().metric_patterns
    except RunError:
        return {}
    out_file = run.rank_out(0)
    if not patterns or not out_file.is_file():
        return {}
    text = out_file.read_text(errors="replace")
    found: dict[str, list[dict[str, Any]]] = {}
    for name, pattern in patterns.items():
        for step, match in enumerate(re.finditer(pattern, text)):
            try:
                value: Any = float(match.group(1))
            except ValueError:
                value = match.group(1)
            found.setdefault(name, []).append({"value": value, "step": step, "rank": 0, "time": None, "scraped": True})
    return found


def plot(metrics: dict[str, list[dict[str, Any]]], path: Path, title: str = "") -> Path:
    """One panel per numeric metric, value against step (or order), a line per rank; saved as PNG."""
    try:
        import matplotlib
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'hpc_tf[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    numeric = {k: v for k, v in metrics.items() if any(isinstance(p["value"], (int, float)) for p in v)}
    if not numeric:
        raise UsageError("no numeric metrics to plot")
    fig, axes = plt.subplots(len(numeric), 1, figsize=(7, 2.6 * len(numeric)), squeeze=False)
    for ax, (name, points) in zip(axes[:, 0], sorted(numeric.items()), strict=True):
        for rank in sorted({p["rank"] for p in points}):
            mine = [p for p in points if p["rank"] == rank and isinstance(p["value"], (int, float))]
            xs = [p["step"] if p["step"] is not None else i for i, p in enumerate(mine)]
            ax.plot(xs, [p["value"] for p in mine], marker="o", markersize=3, label=f"rank {rank}")
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if len({p["rank"] for p in points}) > 1:
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
