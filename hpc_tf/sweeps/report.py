"""Sweep results for people: TensorBoard's HParams dashboard (event files) and two PNG plots.

The event files are written with TensorBoard's own protobufs and record writer, without TensorFlow, so
a report costs a fraction of a second, not a TensorFlow import. Layout under `tb_root` (any parent works
as `--logdir`): one experiment-level `hparams_config` in `tb_root/` and one session per trial in
`tb_root/<trial_id>/` (its hyperparameter values, the primary metric as scalars at steps 1..n, and how
it ended). The config depends on the parameter space only (and on the names of parameters outside it),
so calls for different subsets of the trials, even at once (one per trial as each ends), agree on it.

TensorBoard's session statuses are SUCCESS, FAILURE, RUNNING and UNKNOWN (it has no "aborted"): a trial
stopped by the early-termination policy or cancelled ends as UNKNOWN (ended, without a verdict), other
final states as FAILURE. A trial not ended yet has no session end (TensorBoard shows UNKNOWN too): a
running TensorBoard keeps the first session end it reads for a run, so only a final one is written.
"""

from __future__ import annotations

import math
import os
import socket
import time
from pathlib import Path
from typing import Any

import msgspec

from ..core.records import TERMINAL_STATES
from ..errors import UsageError
from .core.spec import GOALS, ParamExpr, Scalar
from .plots import plot_curves, plot_params

__all__ = ["SESSION_STATUS", "TrialResult", "plot_curves", "plot_params", "session_status", "write_hparams"]

# A trial's state → TensorBoard's session status (api.proto's Status); another final state (one of
# TERMINAL_STATES) is a failure. The LOST verdict may still be revised, so it is not an end either.
SESSION_STATUS = {"COMPLETED": "STATUS_SUCCESS", "EARLY_TERMINATED": "STATUS_UNKNOWN", "CANCELLED": "STATUS_UNKNOWN"}


class TrialResult(msgspec.Struct, frozen=True, kw_only=True):
    """One trial of a sweep, as much as a report needs."""

    index: int  # trial number in the sweep, 0-based
    trial_id: str  # the trial's run id, also its folder name under tb_root
    state: str  # COMPLETED, EARLY_TERMINATED, FAILED, CANCELLED, RUNNING, PENDING, ...
    hyperparameters: dict[str, Scalar]  # keys are script flags, e.g. "--learning-rate"
    history: list[float]  # the primary metric per interval (1st logging, 2nd, ...)


def session_status(state: str) -> str | None:
    """The Status name a trial's session ends with, or None (no session end) while it has not ended."""
    if state in SESSION_STATUS:
        return SESSION_STATUS[state]
    return "STATUS_FAILURE" if state in TERMINAL_STATES else None


def write_hparams(
    tb_root: Path, space: dict[str, ParamExpr], metric: str, goal: str, trials: list[TrialResult]
) -> Path:
    """Write (or rewrite) the HParams dashboard's data for a sweep under `tb_root`; returns `tb_root`.

    Each folder gets one new event file, written under a name TensorBoard ignores, then renamed into
    place and the older event files removed: calling again after more trials ended shows each trial once,
    with its latest state, and a TensorBoard reading meanwhile never sees a half-written session."""
    tb = _tensorboard()
    if goal not in GOALS:
        raise UsageError(f"goal must be one of {', '.join(GOALS)} (got {goal!r})")
    ids = [t.trial_id for t in trials]
    for trial in trials:
        if trial.trial_id in ("", ".", "..") or "/" in trial.trial_id or os.sep in trial.trial_id:
            raise UsageError(f"trial {trial.index}: trial_id {trial.trial_id!r} can't be a folder name")
        if ids.count(trial.trial_id) > 1:
            raise UsageError(f"trial_id {trial.trial_id!r} is given for more than one trial")
    tb_root = Path(tb_root)
    now = time.time()
    as_text = _text_params(space, trials)
    for trial in trials:
        _write_events(tb, tb_root / trial.trial_id, _session_events(tb, trial, metric, as_text, now), now)
    config = tb.config_pb(_hparam_infos(tb, space, trials, as_text), metric, goal, now)
    _write_events(tb, tb_root, [(0, config)], now)
    return tb_root


class _TB:
    """The few TensorBoard pieces used, imported together (and only when a report is written)."""

    def __init__(self) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2  # type: ignore[import-untyped]
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2  # type: ignore[import-untyped]
        from tensorboard.plugins.hparams import summary_v2 as hp
        from tensorboard.plugins.scalar import metadata as scalar_metadata  # type: ignore[import-untyped]
        from tensorboard.summary.writer.record_writer import RecordWriter  # type: ignore[import-untyped]
        from tensorboard.util import tensor_util  # type: ignore[import-untyped]

        self.event_pb2, self.summary_pb2, self.tensor_util = event_pb2, summary_pb2, tensor_util
        self.RecordWriter = RecordWriter
        self.api_pb2, self.plugin_data_pb2, self.metadata, self.hp = api_pb2, plugin_data_pb2, metadata, hp
        self.scalar_metadata = scalar_metadata

    def config_pb(self, infos: list[Any], metric: str, goal: str, now: float) -> Any:
        """The experiment summary: hparams with their domains, and the primary metric."""
        metric_info = self.api_pb2.MetricInfo(
            name=self.api_pb2.MetricName(tag=metric), display_name=metric, description=f"primary metric ({goal})"
        )
        experiment = self.api_pb2.Experiment(hparam_infos=infos, metric_infos=[metric_info], time_created_secs=now)
        return self.plugin_pb(
            self.metadata.EXPERIMENT_TAG, self.plugin_data_pb2.HParamsPluginData(experiment=experiment)
        )

    def plugin_pb(self, tag: str, data: Any) -> Any:
        """A summary carrying HParamsPluginData, as summary_v2 writes them (its helper is private)."""
        summary = self.summary_pb2.Summary()
        summary.value.add(
            tag=tag, metadata=self.metadata.create_summary_metadata(data), tensor=self.metadata.NULL_TENSOR
        )
        return summary

    def scalar_pb(self, tag: str, value: float) -> Any:
        """A scalar summary as tf.summary.scalar writes it: float32 (TensorBoard's data server, the default
        reader of `tensorboard --logdir`, ignores float64 scalars)."""
        import numpy as np

        summary = self.summary_pb2.Summary()
        summary.value.add(
            tag=tag,
            metadata=self.scalar_metadata.create_summary_metadata(display_name=tag, description=""),
            tensor=self.tensor_util.make_tensor_proto(np.float32(value)),
        )
        return summary


def _tensorboard() -> _TB:
    try:
        return _TB()
    except ImportError as exc:
        raise UsageError(f"the HParams report needs tensorboard ({exc}): pip install tensorboard") from None


def _text_params(space: dict[str, ParamExpr], trials: list[TrialResult]) -> set[str]:
    """The hparams shown as text: choices with a text value or mixing kinds (say 'relu' and 1), and
    parameters outside the space whose values are text or not of one kind."""
    kinds = {name: {_kind(v) for v in expr.values} for name, expr in space.items() if expr.kind == "choice"}
    for trial in trials:
        for name, value in trial.hyperparameters.items():
            if name not in space:
                kinds.setdefault(name, set()).add(_kind(value))
    return {name for name, found in kinds.items() if len(found) > 1 or str in found}


def _kind(value: Scalar) -> type:
    return bool if isinstance(value, bool) else float if isinstance(value, (int, float)) else str


def _hparam_infos(tb: _TB, space: dict[str, ParamExpr], trials: list[TrialResult], as_text: set[str]) -> list[Any]:
    """One HParamInfo per parameter of the space, with its domain; then one (type only) per parameter
    outside it that a trial reports. `differs` (the dashboard shows those first): can take two values."""
    api = tb.api_pb2
    infos = []
    for name, expr in space.items():
        info = api.HParamInfo(name=name, display_name=name, description=expr.text(), type=api.DATA_TYPE_FLOAT64)
        if expr.kind == "choice":
            if name in as_text:
                info.type = api.DATA_TYPE_STRING
                values: list[Scalar] = sorted({str(v) for v in expr.values})
            elif all(isinstance(v, bool) for v in expr.values):
                info.type = api.DATA_TYPE_BOOL
                values = sorted(set(expr.values))
            else:
                values = sorted({float(v) for v in expr.values})
            info.domain_discrete.extend(values)
            info.differs = len(values) > 1
        elif (bounds := _interval(expr)) is not None:
            info.domain_interval.min_value, info.domain_interval.max_value = bounds
            info.differs = bounds[1] > bounds[0]
        else:  # normal kinds: unbounded, no domain
            info.differs = bool(expr.sigma)
        infos.append(info)
    others: dict[str, list[Scalar]] = {}
    for trial in trials:
        for name, value in trial.hyperparameters.items():
            if name not in space:
                others.setdefault(name, []).append(value)
    for name, seen in others.items():
        kind = str if name in as_text else _kind(seen[0])
        data_type = {str: api.DATA_TYPE_STRING, bool: api.DATA_TYPE_BOOL}.get(kind, api.DATA_TYPE_FLOAT64)
        infos.append(api.HParamInfo(name=name, display_name=name, type=data_type, differs=len(set(seen)) > 1))
    return infos


def _interval(expr: ParamExpr) -> tuple[float, float] | None:
    """The values a numeric expression can draw, or None for the unbounded (normal) kinds."""
    if expr.kind == "randint" and expr.upper is not None:
        return 0.0, float(expr.upper - 1)
    if expr.low is None or expr.high is None:
        return None
    if expr.kind in ("uniform", "quniform"):
        low, high = expr.low, expr.high
    elif expr.kind in ("loguniform", "qloguniform"):
        low, high = math.exp(expr.low), math.exp(expr.high)
    else:
        return None
    if expr.q:  # round(x / q) * q
        low, high = round(low / expr.q) * expr.q, round(high / expr.q) * expr.q
    return low, high


def _session_events(tb: _TB, trial: TrialResult, metric: str, as_text: set[str], now: float) -> list[tuple[int, Any]]:
    """(step, summary) of one trial: its hparams at step 0, the metric at 1..n, then its end (if ended)."""
    values = {n: str(v) if n in as_text else v for n, v in trial.hyperparameters.items()}
    events: list[tuple[int, Any]] = [(0, tb.hp.hparams_pb(values, trial_id=trial.trial_id, start_time_secs=now))]
    events += [(step, tb.scalar_pb(metric, value)) for step, value in enumerate(trial.history, 1)]
    status = session_status(trial.state)
    if status is not None:
        end = tb.plugin_data_pb2.SessionEndInfo(status=tb.api_pb2.Status.Value(status), end_time_secs=now)
        data = tb.plugin_data_pb2.HParamsPluginData(session_end_info=end)
        events.append((len(trial.history), tb.plugin_pb(tb.metadata.SESSION_END_INFO_TAG, data)))
    return events


def _write_events(tb: _TB, folder: Path, events: list[tuple[int, Any]], now: float) -> None:
    """`folder`'s event file: `events` in order, replacing the event files of earlier calls.

    Written as EventFileWriter does, but with plain file I/O (EventFileWriter goes through tf.io.gfile,
    which imports TensorFlow when present). The file is named when complete, by the time (seconds, then
    nanoseconds): it sorts after older ones, so a running TensorBoard moves on to it."""
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".writing-{os.getpid()}-{time.time_ns()}"  # no "tfevents": TensorBoard skips it
    try:
        with open(partial, "xb") as stream:
            records = tb.RecordWriter(stream)
            records.write(tb.event_pb2.Event(wall_time=now, file_version="brain.Event:2").SerializeToString())
            for step, summary in events:
                records.write(tb.event_pb2.Event(wall_time=now, step=step, summary=summary).SerializeToString())
        ns = time.time_ns()
        name = f"events.out.tfevents.{ns // 10**9:010d}.{ns % 10**9:09d}.{socket.gethostname()}.{os.getpid()}"
        os.replace(partial, folder / name)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    # keep the newest name only, this call's included: of two writers at once, whichever lists last sees both
    # files (a file renamed after that listing is its own writer's, which lists later), so one stays
    events_files = sorted(p for p in folder.iterdir() if "tfevents" in p.name and p.is_file())
    for old in events_files[:-1]:
        old.unlink(missing_ok=True)
