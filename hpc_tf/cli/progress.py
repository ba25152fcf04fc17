"""The `wait` progress line: rewritten in place on a terminal, plain lines elsewhere."""

from __future__ import annotations

import time
from typing import IO, TYPE_CHECKING

from .text import duration as _duration
from .text import unreachable_text

if TYPE_CHECKING:
    from ..core.records import RunStatus
    from ..runs.follow import Run


class Progress:
    """`RUNNING 0:01:23 loss=0.1234 (step 4)`: one line rewritten in place on a terminal; elsewhere a
    plain line each time the state changes."""

    def __init__(self, run: Run, stream: IO[str]) -> None:
        self.run, self.stream, self.tty = run, stream, stream.isatty()
        self.last_state: str | None = None
        self.last_unreachable: str | None = None
        self.shown = False
        self._metric, self._metric_read = "", 0.0

    def unreachable(self, status: RunStatus) -> None:
        """Say once when the scheduler stops answering, and once when it answers again."""
        since = status.scheduler_unreachable_since
        if since != self.last_unreachable:
            text = unreachable_text(status) if since else "the scheduler answers again"
            self.stream.write(("\n" if self.shown else "") + f"hpc_tf: {text}\n")
            self.stream.flush()
            self.last_unreachable = since

    def __call__(self, status: RunStatus) -> None:
        from .text import elapsed_seconds

        self.unreachable(status)
        state = status.state
        if self.tty:
            if time.monotonic() - self._metric_read > 1.0:  # metrics files can be long: once a second
                self._metric, self._metric_read = self._last_metric(), time.monotonic()
            line = f"{state:10} {_duration(elapsed_seconds(status)):>8}  {self._metric}"
            self.stream.write("\r" + line[:120].ljust(80))
            self.stream.flush()
            self.shown = True
        elif state != self.last_state and not status.final:  # the final state is reported by the caller
            self.stream.write(f"hpc_tf: run {self.run.run_id} {state}\n")
            self.stream.flush()
        self.last_state = state

    def _last_metric(self) -> str:
        from ..metrics import read_metrics

        metrics = read_metrics(self.run.dir)
        latest = max(
            ((name, p) for name, points in metrics.items() for p in points),
            key=lambda item: item[1].get("time") or 0,
            default=None,
        )
        if latest is None:
            return ""
        name, point = latest
        value = point["value"]
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        return f"{name}={text}" + (f" (step {point['step']})" if point.get("step") is not None else "")

    def done(self) -> None:
        if self.shown:
            self.stream.write("\n")
