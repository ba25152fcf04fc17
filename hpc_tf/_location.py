"""Where this hpc_tf lives, for jobs that must import the very same one."""

from __future__ import annotations

import functools
import sysconfig
from pathlib import Path


@functools.lru_cache(maxsize=1)
def package_root() -> str:
    """The folder holding this hpc_tf when a job's interpreter would not find it by itself (a source
    checkout), or "" when hpc_tf is installed in the interpreter's site-packages."""
    root = Path(__file__).resolve().parents[1]
    installed = {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")}
    return "" if root in installed else str(root)
