"""Snapshot of source_directory taken at submit time: the job runs this copy, so later edits don't leak in.

`.hpctfignore` in source_directory (gitignore syntax) lists what to leave out; `.git/`,
`__pycache__/`, `*.pyc`, `outputs/` and the runs directory itself are always left out.
The total size is capped (default 300 MiB, `HPC_TF_SNAPSHOT_MAX_MB`) with an error that
names the largest entries, before anything is copied.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import msgspec

from ..errors import ConfigError, Problem

IGNORE_FILE = ".hpctfignore"
ALWAYS_IGNORED = [".git/", "__pycache__/", "*.pyc", "outputs/", ".ipynb_checkpoints/", ".hpc_tf_runs/"]
DEFAULT_MAX_MB = 300
MAX_IGNORE_BYTES = 2**20  # like a config file: far more than any list of patterns


class SnapshotPlan(msgspec.Struct, frozen=True):
    """The files a snapshot will hold (relative paths) and their total size, computed without writing."""

    source: Path
    files: list[tuple[str, int]]

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)


def plan_snapshot(source: Path, exclude: list[Path], max_bytes: int) -> SnapshotPlan:
    """List what to copy; raise ConfigError if it is over the cap."""
    spec = _ignore_spec(source)
    excluded = {p.resolve() for p in exclude}
    files: list[tuple[str, int]] = []
    for root, dirs, names in os.walk(source, followlinks=False):
        root_path = Path(root)
        rel_root = root_path.relative_to(source)
        dirs[:] = [
            d
            for d in dirs
            if (root_path / d).resolve() not in excluded and not spec.match_file(f"{(rel_root / d).as_posix()}/")
        ]
        for name in names:
            rel = (rel_root / name).as_posix()
            if spec.match_file(rel):
                continue
            try:
                files.append((rel, (root_path / name).stat().st_size))
            except OSError:
                continue  # a dangling symlink: nothing to copy
    plan = SnapshotPlan(source, files)
    if plan.total_bytes > max_bytes:
        raise ConfigError([Problem("source_directory", _too_big_message(plan, max_bytes), str(source))])
    return plan


class _BuiltinIgnores:
    """ALWAYS_IGNORED as plain rules (no `.hpctfignore`: pathspec, slow to import, is not needed)."""

    DIRS = frozenset(p.rstrip("/") for p in ALWAYS_IGNORED if p.endswith("/"))

    def match_file(self, rel: str) -> bool:
        parts = rel.rstrip("/").split("/")
        folders = parts if rel.endswith("/") else parts[:-1]
        return any(part in self.DIRS or part.endswith(".pyc") for part in folders) or parts[-1].endswith(".pyc")


def _ignore_spec(source: Path) -> Any:
    """What the snapshot leaves out: the built-in patterns, plus `.hpctfignore` (gitignore syntax) if any."""
    ignore_file = source / IGNORE_FILE
    if not ignore_file.is_file():
        return _BuiltinIgnores()
    import pathspec

    try:
        if ignore_file.stat().st_size > MAX_IGNORE_BYTES:
            raise ValueError(f"over {MAX_IGNORE_BYTES // 2**20} MiB")
        patterns = list(ALWAYS_IGNORED) + ignore_file.read_text(encoding="utf-8").splitlines()
        return pathspec.GitIgnoreSpec.from_lines(patterns)
    except UnicodeDecodeError as exc:
        why = f"not UTF-8 text (byte {exc.start}); it holds gitignore patterns, one a line"
    except OSError as exc:
        why = f"cannot be read ({exc.strerror or exc})"
    except ValueError as exc:  # pathspec's own errors (a pattern it refuses) are ValueErrors
        why = f"cannot be used ({exc})"
    raise ConfigError([Problem("source_directory", f"{ignore_file}: {why}", str(source))])


def _too_big_message(plan: SnapshotPlan, max_bytes: int) -> str:
    biggest: dict[str, int] = {}
    for rel, size in plan.files:
        top = rel.split("/", 1)[0]
        biggest[top] = biggest.get(top, 0) + size
    top5 = sorted(biggest.items(), key=lambda kv: -kv[1])[:5]
    listing = ", ".join(f"{name} ({size / 2**20:.1f} MiB)" for name, size in top5)
    return (
        f"snapshot would be {plan.total_bytes / 2**20:.1f} MiB, over the {max_bytes / 2**20:.0f} MiB cap; "
        f"largest entries: {listing}. List data and checkpoints in {IGNORE_FILE} (gitignore syntax) "
        f"or raise HPC_TF_SNAPSHOT_MAX_MB"
    )


def copy_snapshot(plan: SnapshotPlan, dest: Path) -> None:
    """Copy the planned files (symlinks are followed: the snapshot holds content, not links)."""
    dest.mkdir()
    made: set[Path] = {dest}
    for rel, _ in plan.files:
        target = dest / rel
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        shutil.copyfile(plan.source / rel, target)
        shutil.copymode(plan.source / rel, target)
