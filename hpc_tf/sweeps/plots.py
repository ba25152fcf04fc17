"""Two PNG views of a sweep: the primary metric of every trial over its intervals, and each
hyperparameter against the metric a trial ended with. Matplotlib (Agg) is imported only when plotting."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from .core.spec import GOALS, Scalar

if TYPE_CHECKING:
    from .report import TrialResult

# Colours by state, so a glance tells finished, stopped early, failed and still running apart.
_COLOURS = {"COMPLETED": "tab:green", "EARLY_TERMINATED": "tab:orange", "CANCELLED": "tab:gray", "RUNNING": "tab:blue"}
_OTHER_FINAL = "tab:red"  # FAILED, TIMEOUT, ... and any other state
_LABELLED_TRIALS = 30  # beyond this, trial numbers at line ends would be clutter


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise UsageError("sweep plots need matplotlib: pip install 'hpc_tf[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colour(state: str) -> str:
    return _COLOURS.get(state, _OTHER_FINAL)


def _with_history(trials: list[TrialResult], metric: str) -> list[TrialResult]:
    """The trials that logged the metric at least once; none → UsageError."""
    found = [t for t in trials if t.history]
    if not found:
        raise UsageError(f"no trial has logged {metric} yet")
    return found


def plot_curves(trials: list[TrialResult], metric: str, path: Path) -> Path:
    """The primary metric of each trial against the interval, one line per trial coloured by state;
    an early-terminated trial gets an 'x' where the policy stopped it. Saved as PNG at `path`."""
    shown = _with_history(trials, metric)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    states: dict[str, None] = {}
    for trial in sorted(shown, key=lambda t: t.index):
        colour = _colour(trial.state)
        steps = range(1, len(trial.history) + 1)
        label = None if trial.state in states else trial.state
        states[trial.state] = None
        ax.plot(steps, trial.history, color=colour, marker="o", markersize=3, linewidth=1.2, alpha=0.85, label=label)
        if trial.state == "EARLY_TERMINATED":
            ax.plot([steps[-1]], [trial.history[-1]], color=colour, marker="x", markersize=10, markeredgewidth=2)
        if len(shown) <= _LABELLED_TRIALS:
            ax.annotate(
                str(trial.index),
                (steps[-1], trial.history[-1]),
                textcoords="offset points",
                xytext=(4, 2),
                fontsize=7,
                color=colour,
            )
    ax.set_xlabel("interval (n-th logging of the metric)")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per trial ({len(shown)} of {len(trials)} trials have logged it)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(title="state", fontsize=8)
    return _save(plt, fig, path)


def plot_params(trials: list[TrialResult], metric: str, goal: str, path: Path) -> Path:
    """One panel per hyperparameter: its value against the trial's final metric (the last logged value),
    points coloured by state, the best trial (by `goal`) starred in every panel. A parameter whose values
    are positive and span more than two decades gets a log axis; text values get a category axis."""
    if goal not in GOALS:
        raise UsageError(f"goal must be one of {', '.join(GOALS)} (got {goal!r})")
    shown = _with_history(trials, metric)
    finite = [t for t in shown if math.isfinite(t.history[-1])]
    best = (max if goal == "maximize" else min)(finite, key=lambda t: t.history[-1]) if finite else None
    names = list(dict.fromkeys(n for t in shown for n in t.hyperparameters))
    if not names:
        raise UsageError("the trials have no hyperparameters to plot")
    plt = _pyplot()
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        mine = [t for t in shown if name in t.hyperparameters]
        xs = _positions(ax, [t.hyperparameters[name] for t in mine])
        ys = [t.history[-1] for t in mine]
        ax.scatter(xs, ys, c=[_colour(t.state) for t in mine], s=28, alpha=0.85, edgecolors="none")
        for trial, x, y in zip(mine, xs, ys, strict=True):
            if trial is best:
                ax.scatter([x], [y], marker="*", s=220, facecolors="none", edgecolors="black", linewidths=1.4)
        ax.set_title(name, fontsize=10)
        ax.set_ylabel(f"final {metric}", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    states = list(dict.fromkeys(t.state for t in shown))
    handles = [plt.Line2D([], [], color=_colour(s), marker="o", linestyle="", label=s) for s in states]
    if best is not None:
        handles.append(
            plt.Line2D(
                [], [], marker="*", markersize=12, markerfacecolor="none", color="black", linestyle="", label="best"
            )
        )
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    top = f", best: trial {best.index} ({best.history[-1]:.6g})" if best else ""
    fig.suptitle(f"final {metric} by hyperparameter ({goal}{top})", fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _save(plt, fig, path)


def _positions(ax: Any, values: list[Scalar]) -> list[float]:
    """x positions of a parameter's values, setting up the axis: categories for text (and booleans,
    and mixed kinds), a log scale for positive numbers spanning more than two decades, else linear."""
    if any(isinstance(v, (str, bool)) for v in values):
        labels = sorted({str(v) for v in values})
        ax.set_xticks(range(len(labels)), labels, rotation=30 if max(map(len, labels)) > 6 else 0, fontsize=8)
        ax.set_xlim(-0.5, len(labels) - 0.5)
        return [float(labels.index(str(v))) for v in values]
    numbers = [float(v) for v in values]
    if numbers and min(numbers) > 0 and max(numbers) / min(numbers) > 100:
        ax.set_xscale("log")
    return numbers


def _save(plt: Any, fig: Any, path: Path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
