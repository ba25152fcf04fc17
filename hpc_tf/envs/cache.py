"""The job environment cache as a whole: listing and pruning (`python -m hpc_tf env list|prune`)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Sequence

import msgspec

from ..core.records import EnvRequest
from ..errors import RunError
from ..rundir import read_bounded
from .build import COMPLETE


class _Marker(msgspec.Struct):
    """What `env list` uses of an environment's `.hpc_tf-env.json` (written by build._build)."""

    key: str
    tool: str = ""
    request: EnvRequest | None = None


def list_envs(root: Path) -> list[dict[str, Any]]:
    """The cached environments, most recently used first. An environment is named by its folder, never by what
    its record says (a record cannot point `prune` elsewhere); a record that cannot be read or does not match
    its folder is listed with `damaged` saying why (its packages are then not known)."""
    out = []
    for marker in root.glob(f"*/{COMPLETE}"):
        folder = marker.parent
        record, damaged = _read_marker(marker)
        try:
            used = marker.stat().st_mtime
            size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())
        except OSError as exc:
            used, size, damaged = 0.0, 0, damaged or f"cannot read {folder}: {exc.strerror or exc}"
        if damaged:
            # `env list` shows the packages: there, the reason (what the folder holds is not known)
            packages = [f"(DAMAGED: {damaged})"]
            record = {"path": str(folder), "tool": "?", "request": {"packages": packages}, "damaged": damaged}
        out.append({**record, "key": folder.name, "last_used": used, "size_bytes": size})
    return sorted(out, key=lambda r: -r["last_used"])


def _read_marker(marker: Path) -> tuple[dict[str, Any], str]:
    """The record as JSON data, and what is wrong with it ("" when nothing)."""
    try:
        data = read_bounded(marker)
        checked = msgspec.json.decode(data, type=_Marker)
        record: dict[str, Any] = msgspec.json.decode(data)
    except RunError as exc:
        return {}, str(exc)
    except (msgspec.DecodeError, RecursionError) as exc:
        return {}, f"{marker} is damaged ({exc if not isinstance(exc, RecursionError) else 'nested too deeply'})"
    if checked.key != marker.parent.name:
        return {}, f"{marker} names environment {checked.key!r:.80}, not its folder's"
    if checked.request is None:
        return {}, f"{marker} has no request (what the environment was built from)"
    return record, ""


def prune(root: Path, older_than_days: float | None, keys: Sequence[str] = ()) -> list[str]:
    """Remove environments unused for `older_than_days` (or the named keys), each under its build lock."""
    from filelock import FileLock, Timeout

    removed = []
    now = time.time()
    for record in list_envs(root):
        old = older_than_days is not None and now - record["last_used"] > older_than_days * 86400
        if record["key"] in keys or old:
            with FileLock(str(root / f"{record['key']}.lock"), timeout=60):
                shutil.rmtree(root / record["key"], ignore_errors=True)
                (root / f"{record['key']}.build.log").unlink(missing_ok=True)
            removed.append(record["key"])
    for stale in root.glob("*.tmp-*"):  # builds that died half-way (their lock is free again)
        key = stale.name.split(".tmp-")[0]
        try:
            with FileLock(str(root / f"{key}.lock"), timeout=0):
                if stale.is_dir():
                    shutil.rmtree(stale, ignore_errors=True)
                else:
                    stale.unlink(missing_ok=True)
        except Timeout:  # a build is running right now
            continue
    return removed
