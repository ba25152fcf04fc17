"""The dev cluster's instances stay apart (scripts/dev-cluster.sh): the suite runs one per worker, and one
instance's `down` must never stop another's daemons or jobs. A killed daemon leaves its pid file behind and the
kernel gives its pid again (pid_max is often 32768), and a freed UTS namespace's number goes to the next one made:
on a parallel run, a `down` that trusted either stopped another worker's slurmd and the srun of its job."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import CLUSTER, cluster_instance

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def other_instance() -> Iterator[dict[str, str]]:
    yield from cluster_instance("isolation", "17917", HPC_TF_CLUSTER_NODES="1")


def _pid(path: Path) -> int:
    return int(path.read_text().split()[0])


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _processes_naming(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def test_a_down_whose_pid_file_names_another_instances_slurmd_stops_only_its_own(
    slurm: dict[str, str], other_instance: dict[str, str], tmp_path: Path
) -> None:
    mine = Path(slurm.get("HPC_TF_CLUSTER_DIR", "/var/tmp/hpc_tf-cluster"))
    job = subprocess.run(
        ["sbatch", "--parsable", "-N1", "-w", "n1", f"--chdir={tmp_path}", "-o", "/dev/null", "--wrap", "sleep 120"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    job_id = job.stdout.strip().split(";")[0]
    deadline = time.monotonic() + 60
    while (
        "RUNNING"
        not in subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout
    ):
        assert time.monotonic() < deadline, "the job on this worker's cluster never started"
        time.sleep(0.5)
    slurmd = _pid(mine / "run" / "slurmd-n1.pid")
    other = Path(other_instance["HPC_TF_CLUSTER_DIR"])
    (other / "run" / "slurmd-n1.pid").write_text(f"{slurmd}\n")  # as if its slurmd died and the pid went to ours
    env = {**os.environ, **other_instance}
    down = subprocess.run([str(CLUSTER), "down"], capture_output=True, text=True, env=env, timeout=120)
    assert down.returncode == 0, down.stderr
    assert _alive(slurmd), "the other instance's down stopped this instance's slurmd"
    state = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout.strip()
    assert state == "RUNNING", state
    assert _processes_naming(f"{other}/") == []  # and its own slurmd (not in its pid file) went with its reaper
    subprocess.run(["scancel", job_id], capture_output=True)
