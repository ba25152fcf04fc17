"""How the CLI writes values: dashes for nothing, H:MM:SS durations, the scheduler-outage line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core.records import RunStatus


def unreachable_text(status: RunStatus) -> str:
    """ "scheduler not answering since …" for a run whose scheduler did not answer the last query."""
    if not status.scheduler_unreachable_since:
        return ""
    return (
        f"scheduler not answering since {status.scheduler_unreachable_since} ({status.scheduler_error}); "
        f"showing the last known state"
    )


def dash(value: Any) -> str:
    return "-" if value is None or value == [] else (",".join(value) if isinstance(value, list) else str(value))


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
