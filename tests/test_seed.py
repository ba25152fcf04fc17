"""The seed's three estimator examples, with the seed's own values, as configs that run on the dev cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import REPO, hpc, read_status

SEEDS = ["seed-single-node", "seed-horovod", "seed-parameter-server"]


@pytest.mark.slurm
@pytest.mark.tf
@pytest.mark.parametrize("name", SEEDS)
def test_the_seed_examples_run_as_written(slurm: dict, tmp_path: Path, name: str) -> None:
    proc = hpc(
        "submit", str(REPO / "configs" / f"{name}.yaml"), "--wait", "--json", "--runs-dir", str(tmp_path), timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = Path(json.loads(proc.stdout.splitlines()[-1])["run_dir"])
    status = read_status(run_dir)
    assert (status["state"], status["exit_code"], status["backend"]) == ("COMPLETED", 0, "slurm")
    if name == "seed-parameter-server":  # 4 tasks spread by Slurm over the seed's 2 nodes, as explain says
        assert "#SBATCH --nodes=2" in (run_dir / "job.sh").read_text()
        tasks = [json.loads((run_dir / "tasks" / f"rank-{r}.json").read_text()) for r in range(4)]
        placed = [(t["role"], t["index"], t["host"]) for t in tasks]
        nodes = status["nodes"]
        explained = json.loads(
            hpc("explain", str(REPO / "configs" / f"{name}.yaml"), "--nodelist", ",".join(nodes), "--json").stdout
        )
        assert placed == [(row["role"], row["index"], row["node"]) for row in explained]
        assert [p[0] for p in placed] == ["chief", "ps", "worker", "worker"] and len(set(nodes)) == 2
