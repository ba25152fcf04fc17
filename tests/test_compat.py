"""Run directories written by the previous hpc_tf (0.1, untyped records) are read by this one, CLI and API."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from hpc_tf.core.records import STATUS_SCHEMA
from hpc_tf.runs.follow import Run

from .conftest import hpc

OLD = Path(__file__).parent / "data" / "rundir-v0.1" / "written-by-0.1"


def test_the_previous_versions_run_directories_are_listed_followed_and_read(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(OLD, runs, symlinks=True)
    rows = json.loads(hpc("runs", "--runs-dir", str(runs), "--json").stdout)
    assert sorted((r["backend"], r["state"], r["exit_code"]) for r in rows) == [
        ("local", "COMPLETED", 0),
        ("slurm", "COMPLETED", 0),
        ("slurm", "FAILED", 3),
    ]
    assert all(r["final"] and r["schema"] == STATUS_SCHEMA for r in rows)  # read as today's record, defaults filled in
    for row in rows:
        status = hpc("status", row["run_id"], "--runs-dir", str(runs))
        assert status.returncode == 0 and row["state"] in status.stdout, status.stderr
        logs = hpc("logs", row["run_dir"])
        assert "argv" in logs.stdout and "oops" in logs.stderr
        metrics = json.loads(hpc("metrics", row["run_dir"], "--json").stdout)
        assert [p["value"] for p in metrics["loss"]] == [0.5, 0.25]
        run = Run(row["run_dir"])
        assert [t.rank for t in run.tasks()] == [0] and run.get_file_names() == ["model.txt"]
        assert run.dir.read_job().command[-2:] in (["--batch-size", "50"], ["-u", "train.py"])
    for old in OLD.glob("*/*/status.json"):  # final runs are read, never rewritten
        assert (runs / old.relative_to(OLD)).read_bytes() == old.read_bytes()
