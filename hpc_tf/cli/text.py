"""How the CLI writes values: dashes for nothing, H:MM:SS durations, elapsed time, records as JSON data, the
scheduler-outage line."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any

import msgspec

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


def elapsed_seconds(status: RunStatus) -> float | None:
    """Start to end (or to now while running); None when either time is not a timestamp with a time zone
    (`runs.follow.status_problem` marks such a run DAMAGED: one line never stops a listing)."""
    start = _parse(status.start_time)
    if start is None:
        return None
    end = _parse(status.end_time) if status.end_time else _dt.datetime.now(_dt.timezone.utc)
    if end is None:
        return None
    try:
        return max(0.0, (end - start).total_seconds())
    except OverflowError:
        return None


def _parse(stamp: str | None) -> _dt.datetime | None:
    try:
        parsed = _dt.datetime.fromisoformat(stamp) if stamp else None
    except ValueError:
        return None
    return parsed if parsed is not None and parsed.utcoffset() is not None else None


def status_dict(record: msgspec.Struct) -> dict[str, Any]:
    """A record (status, task) as plain JSON data (for --json)."""
    data: dict[str, Any] = msgspec.to_builtins(record)
    return data


def json_line(data: Any) -> str:
    """What --json prints: one line of JSON, through msgspec (loaded already; the json module would add ~1.5 ms
    of imports to every command). Text msgspec cannot encode (a lone surrogate: a path of undecodable bytes, as
    os.fsdecode gives it) goes through the json module, as a \\udcxx escape."""
    try:
        return msgspec.json.encode(data).decode()
    except UnicodeEncodeError:
        import json

        return json.dumps(data)
