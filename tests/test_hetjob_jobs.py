"""Per-role placement (issue 12) on the real dev cluster: the parameter-server example as one heterogeneous job, the
chief and the ps on `cpu` partition nodes, the workers on `gpu` partition nodes (scripts/dev-cluster.sh)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import hpc, read_status, wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.tf]

REPO = Path(__file__).resolve().parent.parent
CPU, GPU = {"n1", "n2"}, {"n3", "n4"}


def tasks(run_dir: Path) -> list[dict]:
    return sorted((json.loads(p.read_text()) for p in (run_dir / "tasks").glob("rank-*.json")), key=lambda t: t["rank"])


def test_the_ps_example_places_each_role_on_its_partition(slurm: dict, tmp_path: Path) -> None:
    config = REPO / "configs" / "parameter-server-hetjob.yaml"
    proc = hpc("submit", str(config), "--runs-dir", str(tmp_path / "runs"), "--json")
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(json.loads(proc.stdout)["run_dir"])
    hpc("wait", str(run_dir), timeout=600)
    status = read_status(run_dir)
    assert (status["state"], status["exit_code"]) == ("COMPLETED", 0), status
    cluster = json.loads((run_dir / "outputs" / "metrics.json").read_text())["cluster"]
    roles = [(t["role"], t["index"], t["host"], t["cuda_visible_devices"]) for t in tasks(run_dir)]
    assert [r[:2] for r in roles] == [("chief", 0), ("ps", 0), ("worker", 0), ("worker", 1)]
    for role, index, host, gpus in roles:
        assert cluster[role][index].split(":")[0] == host  # each task runs where its TF_CONFIG says
        assert host in (GPU if role == "worker" else CPU), (role, host)
        assert gpus == ("" if role == "ps" else ("0" if role == "worker" else None))
    assert subprocess.run(["squeue", "-h", "-j", status["job_id"]], capture_output=True, text=True).stdout == ""


def test_cancel_ends_every_component(slurm: dict, tmp_path: Path) -> None:
    config = REPO / "configs" / "parameter-server-hetjob.yaml"
    proc = hpc("submit", str(config), "--runs-dir", str(tmp_path / "runs"), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    run_dir = Path(info["run_dir"])
    wait_for(lambda: read_status(run_dir)["state"] == "RUNNING", 120)
    assert hpc("cancel", str(run_dir)).returncode == 0
    hpc("wait", str(run_dir), timeout=120)
    assert read_status(run_dir)["state"] == "CANCELLED"
    left = subprocess.run(["squeue", "-h", "-t", "all", "-j", str(info["job_id"]), "-o", "%i|%T"],
                          capture_output=True, text=True).stdout.split()
    assert all(line.endswith(("CANCELLED", "COMPLETED")) for line in left), left
