"""A TF_CONFIG too long for the environment, for real (issue 18, item 8): a 4-task 'multiworker' job on its own dev
cluster instance (`scale`, port 16917) with HPC_TF_TF_CONFIG_ENV_MAX lowered to 64 bytes (4 workers' TF_CONFIG
is ~130), so every task takes the path a ~7,000-task job takes: its TF_CONFIG goes through tasks/tf-config-N.json
and the entry script's interpreter reads it back. Each task's TFConfigClusterResolver sees the whole cluster and
its own task, and the four workers all-reduce across it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import cluster_instance, hpc, make_project, read_status, write_config

pytestmark = [pytest.mark.slurm, pytest.mark.tf]

ENTRY = """
import json, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf

resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
seen = {"cluster": resolver.cluster_spec().as_dict(), "task": [resolver.task_type, resolver.task_id],
        "file": os.environ.get("HPC_TF_TF_CONFIG_FILE"),
        "in_c_environment": b"TF_CONFIG=" in open("/proc/self/environ", "rb").read()}
strategy = tf.distribute.MultiWorkerMirroredStrategy()
seen["sum"] = float(strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None))
print(json.dumps(seen), flush=True)
os.makedirs("outputs", exist_ok=True)
with open("outputs/resolver.json", "w") as f:
    json.dump(seen, f)
"""


@pytest.fixture(scope="module")
def scale_cluster() -> Iterator[dict[str, str]]:
    """Its own 4-node instance: the default cluster may be busy with another test run."""
    yield from cluster_instance("scale", "16917")


def test_a_tf_config_through_its_file_reaches_every_worker(scale_cluster: dict, tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", ENTRY)
    config = write_config(tmp_path / "c.yaml", experiment="tfconfig-file", source_directory=str(project),
                          entry_script="train.py", distributed_backend="multiworker", node_count=4,
                          max_run_duration_seconds=600)  # fmt: skip
    env = {**scale_cluster, "HPC_TF_TF_CONFIG_ENV_MAX": "64"}
    proc = hpc("submit", str(config), "--backend", "slurm", "--runs-dir", str(tmp_path / "runs"), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(json.loads(proc.stdout)["run_dir"])
    hpc("wait", str(run_dir), timeout=600, env=env)
    status = read_status(run_dir)
    assert (status["state"], status["exit_code"]) == ("COMPLETED", 0), (status, _logs(run_dir))
    assert json.loads((run_dir / "job.json").read_text())["tf_config_env_max"] == 64
    tasks = [json.loads((run_dir / "tasks" / f"rank-{r}.json").read_text()) for r in range(4)]
    assert [(t["role"], t["index"], t["tf_config"]) for t in tasks] == [("worker", r, "file") for r in range(4)]
    workers = [f"{t['host']}:{t['port']}" for t in tasks]
    assert sorted(t["host"] for t in tasks) == ["n1", "n2", "n3", "n4"]
    for rank in range(4):
        seen = json.loads((run_dir / "outputs" / ("" if rank == 0 else f"rank-{rank}") / "resolver.json").read_text())
        assert seen["cluster"] == {"worker": workers}  # the whole cluster, in rank order
        assert seen["task"] == ["worker", rank]  # and its own task
        assert seen["file"] == str(run_dir / "tasks" / f"tf-config-{rank}.json")
        assert seen["in_c_environment"] is False and seen["sum"] == 4.0
    assert not list((run_dir / "tasks").glob("tf-config-*.json"))  # removed when each task ended


def _logs(run_dir: Path) -> str:
    return "\n".join(f"{p.name}: {p.read_text()[-1500:]}" for p in sorted((run_dir / "logs").glob("*")) if p.is_file())
