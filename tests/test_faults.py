"""The fault suite: each fault injected for real on the dev cluster (or on this machine), each outcome
asserted on the run directory. The README's fault table lists every row of it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from .conftest import hpc, make_project, read_status, write_config


@pytest.mark.slurm
@pytest.mark.parametrize(
    "target, key",
    [({"partition": "nope"}, "compute_target.partition"), ({"constraint": "nope"}, "compute_target.constraint"),
     ({"reservation": "nope"}, "compute_target.reservation"), ({"exclude": "n99"}, "compute_target.exclude")],
    ids=["unknown-partition", "unknown-feature", "unknown-reservation", "unknown-node"],
)
def test_sbatch_refusing_names_the_key_and_the_run_is_failed_and_listed(slurm: dict, tmp_path: Path, target: dict,
                                                                        key: str) -> None:
    src = make_project(tmp_path / "src", "print('never runs')\n")
    cfg = write_config(tmp_path / "c.yaml", experiment="refused", source_directory=str(src), entry_script="train.py",
                       compute_target=target)
    runs = tmp_path / "runs"
    proc = hpc("submit", str(cfg), "--runs-dir", str(runs))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"sbatch refused the job: check {key}" in proc.stderr
    (run_dir,) = (runs / "refused").iterdir()
    status = read_status(run_dir)
    assert (status["state"], status["final"], status["job_id"]) == ("FAILED", True, None)
    assert key in status["message"]
    rows = json.loads(hpc("runs", "--runs-dir", str(runs), "--json").stdout)
    assert [(r["run_id"], r["state"]) for r in rows] == [(run_dir.name, "FAILED")]


@pytest.fixture
def small_disk(tmp_path: Path):
    """A real 1 MiB filesystem (tmpfs) for the runs directory: full and read-only disks for real."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_at_submit_is_a_clear_error_and_a_failed_run(tmp_path: Path, small_disk: Path) -> None:
    src = make_project(tmp_path / "src", "print('x')\n", **{"data.bin": "x" * 2_000_000})
    cfg = write_config(tmp_path / "c.yaml", experiment="full", source_directory=str(src), entry_script="train.py")
    proc = hpc("submit", str(cfg), "--backend", "local", "--runs-dir", str(small_disk))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "No space left on device" in proc.stderr
    rows = json.loads(hpc("runs", "--runs-dir", str(small_disk), "--json").stdout)
    assert [(r["state"], r["final"]) for r in rows] == [("FAILED", True)]
    assert "No space left" in rows[0]["message"]


def test_a_job_that_fills_the_disk_still_gets_its_end_recorded(tmp_path: Path, small_disk: Path) -> None:
    """The run directory keeps 256 KiB aside (.reserve) and gives it back to write its records."""
    fill = "import os\ntry:\n    f = open('outputs/big', 'wb')\n    while True:\n        f.write(b'x' * 65536)\n" \
           "except OSError:\n    os._exit(3)\n"
    src = make_project(tmp_path / "src", fill)
    cfg = write_config(tmp_path / "c.yaml", experiment="fill", source_directory=str(src), entry_script="train.py")
    proc = hpc("submit", str(cfg), "--backend", "local", "--wait", "--runs-dir", str(small_disk))
    assert proc.returncode == 3, proc.stderr
    (run_dir,) = (small_disk / "fill").iterdir()
    status = read_status(run_dir)
    assert (status["state"], status["exit_code"], status["final"]) == ("FAILED", 3, True)


def test_a_read_only_runs_directory_is_a_clear_error(tmp_path: Path, small_disk: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    src = make_project(tmp_path / "src", "print('x')\n")
    cfg = write_config(tmp_path / "c.yaml", experiment="ro", source_directory=str(src), entry_script="train.py")
    proc = hpc("submit", str(cfg), "--backend", "local", "--runs-dir", str(small_disk))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "cannot create a run directory" in proc.stderr and "Read-only file system" in proc.stderr
    assert hpc("runs", "--runs-dir", str(small_disk)).returncode == 0


def test_a_runs_directory_under_a_file_is_a_clear_error(tmp_path: Path) -> None:
    src = make_project(tmp_path / "src", "print('x')\n")
    cfg = write_config(tmp_path / "c.yaml", experiment="rd", source_directory=str(src), entry_script="train.py")
    (tmp_path / "runs").write_text("not a folder")
    proc = hpc("submit", str(cfg), "--backend", "local", "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "cannot create a run directory" in proc.stderr
