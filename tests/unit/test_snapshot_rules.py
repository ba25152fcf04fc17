"""Without a .hpctfignore the snapshot's built-in rules are plain code (pathspec is slow to import): they
must leave out exactly what pathspec's gitignore matching of the same patterns leaves out."""

from __future__ import annotations

import pathspec
import pytest

from hpc_tf.runs.snapshot import ALWAYS_IGNORED, _BuiltinIgnores

PATHS = [
    "a.py",
    "x.pyc",
    "d/x.pyc",
    ".git/",
    "d/.git/",
    "d/.git/x",
    ".git/config",
    "__pycache__/",
    "a/__pycache__/",
    "a/__pycache__/m.py",
    "outputs/",
    "outputs",
    "a/outputs/",
    "a/outputs",
    "outputs/x",
    ".ipynb_checkpoints/",
    ".hpc_tf_runs/",
    "src/outputs.py",
    "pyc",
    "a.pyc/",
    "a.pyc/x",
    "gitx/",
    ".gitignore",
    "a/b/c/d.txt",
    "my__pycache__/",
    "outputs2/",
    "x.pyc.bak",
]


@pytest.mark.parametrize("path", PATHS)
def test_builtin_rules_agree_with_gitignore_matching(path: str) -> None:
    assert _BuiltinIgnores().match_file(path) == pathspec.GitIgnoreSpec.from_lines(ALWAYS_IGNORED).match_file(path)
