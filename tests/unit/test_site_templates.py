"""A broken site template (HPC_TF_TEMPLATE_DIR) is the site's error, named with its file and why: exit 2, no
traceback, for `render` and `submit` (issue 19)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

BROKEN = {  # name: (template bytes, what the message says)
    "syntax error": (b"{% if %}\n", "TemplateSyntaxError"),
    "not utf-8": (b"\xff\xfe{{ x }}\n", "UnicodeDecodeError"),
    "undefined name": (b"{{ nosuch }}\n", "'nosuch' is undefined"),
    "filter misused": (b"{{ 1 | sh(2, 3) }}\n", "TypeError"),
}


@pytest.mark.parametrize("command", ["render", "submit"])
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_site_template_is_named_not_a_traceback(tmp_path: Path, case: str, command: str) -> None:
    text, said = BROKEN[case]
    site = tmp_path / "site"
    site.mkdir()
    (site / "local.sh.j2").write_bytes(text)
    env = {**os.environ, "HPC_TF_TEMPLATE_DIR": str(site), "PYTHONPATH": str(REPO)}
    extra = ["--runs-dir", str(tmp_path / "runs")] if command == "submit" else []
    proc = subprocess.run(
        [sys.executable, "-m", "hpc_tf", command, str(REPO / "configs" / "digits.yaml"), "--backend", "local", *extra],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "HPC_TF_TEMPLATE_DIR=" in proc.stderr and said in proc.stderr
    assert "local.sh.j2" in proc.stderr
    assert not list((tmp_path / "runs").glob("*/*")) if command == "submit" else True  # nothing half-made
