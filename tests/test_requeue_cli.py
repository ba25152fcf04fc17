"""requeue_on where it does not work yet is refused, naming the key (exit 2), never faked."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import hpc, make_project, write_config


def config(tmp_path: Path, **keys: object) -> Path:
    project = make_project(tmp_path / "proj", "print('hi')\n")
    base = {"experiment": "rq", "source_directory": str(project), "entry_script": "train.py", "requeue_on": ["timeout"]}
    return write_config(tmp_path / "c.yaml", **{**base, **keys})


def test_distributed_runs_are_refused(tmp_path: Path) -> None:
    proc = hpc("validate", str(config(tmp_path, distributed_backend="multiworker", node_count=2)))
    assert proc.returncode == 2 and "requeue_on" in proc.stderr and "'multiworker'" in proc.stderr, proc.stderr


def test_the_job_script_asks_slurm_for_the_warning_and_the_requeue(tmp_path: Path) -> None:
    script = hpc("render", str(config(tmp_path, checkpoint_lead_seconds=90)), "--backend", "slurm").stdout
    assert "#SBATCH --requeue" in script and "#SBATCH --signal=USR2@90" in script and "--no-requeue" not in script
