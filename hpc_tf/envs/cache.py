"""The job environment cache as a whole: listing and pruning (`python -m hpc_tf env list|prune`)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

from .build import COMPLETE


def list_envs(root: Path) -> list[dict[str, Any]]:
    """The cached environments, most recently used first."""
    out = []
    for marker in root.glob(f"*/{COMPLETE}"):
        record = json.loads(marker.read_text())
        record["last_used"] = marker.stat().st_mtime
        record["size_bytes"] = sum(
            f.stat().st_size for f in marker.parent.rglob("*") if f.is_file() and not f.is_symlink()
        )
        out.append(record)
    return sorted(out, key=lambda r: -r["last_used"])


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
