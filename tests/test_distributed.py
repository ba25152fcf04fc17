"""Distributed jobs for real: Horovod over srun and mpirun, parameter servers, multiworker, GPU binding.

On the 4-node dev cluster (nodes n1..n4, 2 fake GPUs each) and on the local backend; every
assertion reads the run directory (status.json, tasks/rank-N.json, outputs/, logs/).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import REPO, hpc, read_status, wait_for, write_config

PROJECTS = Path(__file__).parent / "projects"


def project(tmp_path: Path, name: str) -> Path:
    dest = tmp_path / name
    shutil.copytree(PROJECTS / name, dest)
    return dest


def run(
    config: Path, backend: str, runs: Path, *extra: str, timeout: float = 300
) -> tuple[subprocess.CompletedProcess[str], Path]:
    proc = hpc(
        "submit",
        str(config),
        "--backend",
        backend,
        "--wait",
        "--json",
        "--runs-dir",
        str(runs),
        *extra,
        timeout=timeout,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, proc.stderr
    return proc, Path(json.loads(lines[-1])["run_dir"])


def outputs(run_dir: Path, pattern: str) -> list[dict]:
    """Every rank's output files matching pattern (rank 0's at the top of outputs/, rank N's in outputs/rank-N/)."""
    found = [(p.parent.name, json.loads(p.read_text())) for p in (run_dir / "outputs").rglob(pattern) if p.is_file()]
    return [
        data for _, data in sorted(found, key=lambda item: -1 if item[0] == "outputs" else int(item[0].split("-")[1]))
    ]


@pytest.mark.slurm
@pytest.mark.parametrize(
    "launcher, nodes, per_node", [("srun", 2, 1), ("srun", 1, 2), ("mpirun", 2, 1), ("mpirun", 1, 2)]
)
def test_horovod_ranks_match_the_slurm_layout(
    slurm: dict, tmp_path: Path, launcher: str, nodes: int, per_node: int
) -> None:
    src = project(tmp_path, "horovod")
    config = write_config(
        tmp_path / "hvd.yaml",
        experiment="hvd",
        source_directory=str(src),
        entry_script="train.py",
        distributed_backend="mpi",
        launcher=launcher,
        node_count=nodes,
        process_count_per_node=per_node,
        environment_variables={"HOROVOD_FUSION_THRESHOLD": 33554432},
    )
    proc, run_dir = run(config, "slurm", tmp_path / "runs")
    assert proc.returncode == 0, proc.stderr
    size = nodes * per_node
    ranks = outputs(run_dir, "hvd-*.json")
    assert [r["rank"] for r in ranks] == list(range(size))
    for r in ranks:
        assert r["size"] == size and r["local_size"] == per_node
        assert r["local_rank"] == r["rank"] % per_node
        assert r["host"] == f"n{r['rank'] // per_node + 1}"  # Slurm's block layout
        assert r["allreduce"] == r["mpi_allreduce"] == size * (size + 1) / 2
        assert (r["mpi_rank"], r["mpi_size"]) == (r["rank"], size)
        assert r["fusion_threshold"] == "33554432"  # Horovod knobs reach every rank
        assert math.isfinite(r["loss"])
        assert (
            f"rank {r['rank']}/{size} done" in (run_dir / "logs" / f"rank-{r['rank']}.out").read_text()
            or r["rank"] != 0
        )
        assert (run_dir / "logs" / f"rank-{r['rank']}.err").exists()
    status = read_status(run_dir)
    assert status["state"] == "COMPLETED" and status["nodes"] == [f"n{i + 1}" for i in range(nodes)]


@pytest.mark.slurm
def test_parameter_servers_train_and_end_on_their_own(slurm: dict, tmp_path: Path) -> None:
    src = project(tmp_path, "ps_loop")
    config = write_config(
        tmp_path / "ps.yaml",
        experiment="ps",
        source_directory=str(src),
        entry_script="train.py",
        distributed_backend="ps",
        node_count=4,
        worker_count=2,
        parameter_server_count=1,
    )
    start = time.monotonic()
    proc, run_dir = run(config, "slurm", tmp_path / "runs", timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - start < 120, "the ps and workers must be stopped when the chief ends"
    result = outputs(run_dir, "ps.json")[0]
    assert result["steps"] == 20 and math.isfinite(result["loss"])
    cluster = result["tf_config"]["cluster"]
    assert [h.split(":")[0] for h in cluster["chief"] + cluster["ps"] + cluster["worker"]] == ["n1", "n2", "n3", "n4"]
    tasks = [json.loads((run_dir / "tasks" / f"rank-{i}.json").read_text()) for i in range(4)]
    assert [(t["role"], t["index"], t["host"]) for t in tasks] == [
        ("chief", 0, "n1"),
        ("ps", 0, "n2"),
        ("worker", 0, "n3"),
        ("worker", 1, "n4"),
    ]
    assert tasks[0]["exit_code"] == 0 and all(t["stopped_after_chief"] for t in tasks[1:])
    assert read_status(run_dir)["state"] == "COMPLETED"


@pytest.mark.slurm
def test_a_killed_worker_fails_the_job_naming_its_role(slurm: dict, tmp_path: Path) -> None:
    src = project(tmp_path, "ps_loop")
    config = write_config(
        tmp_path / "ps.yaml",
        experiment="pskill",
        source_directory=str(src),
        entry_script="train.py",
        distributed_backend="ps",
        node_count=4,
        worker_count=2,
        parameter_server_count=1,
        script_params={"--steps": 2000, "--slow": 0.05},
    )
    proc = hpc("submit", str(config), "--backend", "slurm", "--json", "--runs-dir", str(tmp_path / "runs"))
    run_dir = Path(json.loads(proc.stdout)["run_dir"])
    wait_for((run_dir / "outputs" / "started").exists, timeout=120)
    worker = json.loads((run_dir / "tasks" / "rank-2.json").read_text())
    os.kill(worker["child_pid"], signal.SIGKILL)
    start = time.monotonic()
    waited = hpc("wait", str(run_dir), timeout=120)
    assert waited.returncode != 0 and time.monotonic() - start < 60
    status = read_status(run_dir)
    assert status["state"] == "FAILED"
    assert {k: status["first_failure"][k] for k in ("rank", "role", "index", "host", "exit_code")} == {
        "rank": 2,
        "role": "worker",
        "index": 0,
        "host": "n3",
        "exit_code": 137,
    }


@pytest.mark.slurm
def test_seed_tf_config_script_runs_unchanged_on_every_task(slurm: dict, tmp_path: Path) -> None:
    proc, run_dir = run(REPO / "configs" / "tf-config.yaml", "slurm", tmp_path / "runs", timeout=180)
    assert proc.returncode == 0, proc.stderr
    got = {(r["task"]["type"], r["task"]["index"]) for r in outputs(run_dir, "*.json")}
    assert got == {("chief", 0), ("ps", 0), ("worker", 0), ("worker", 1)}
    assert outputs(run_dir, "chief-0.json")[0]["jobs"] == ["chief", "ps", "worker"]


@pytest.mark.slurm
def test_multiworker_mirrored_with_two_workers(slurm: dict, tmp_path: Path) -> None:
    proc, run_dir = run(REPO / "configs" / "multiworker.yaml", "slurm", tmp_path / "runs", timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert outputs(run_dir, "metrics.json")[0]["workers"] == 2
    tasks = [json.loads((run_dir / "tasks" / f"rank-{i}.json").read_text()) for i in range(2)]
    assert [(t["role"], t["index"], t["host"]) for t in tasks] == [("worker", 0, "n1"), ("worker", 1, "n2")]


@pytest.mark.slurm
def test_two_ps_jobs_on_the_same_nodes_get_disjoint_ports(slurm: dict, tmp_path: Path) -> None:
    src = project(tmp_path, "ps_loop")
    config = write_config(
        tmp_path / "ps.yaml",
        experiment="pspair",
        source_directory=str(src),
        entry_script="train.py",
        distributed_backend="ps",
        node_count=4,
        worker_count=2,
        parameter_server_count=1,
    )
    argv = [
        sys.executable,
        "-m",
        "hpc_tf",
        "submit",
        str(config),
        "--backend",
        "slurm",
        "--wait",
        "--json",
        "--runs-dir",
        str(tmp_path / "runs"),
    ]
    procs = [
        subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    results = [p.communicate(timeout=240) for p in procs]
    assert all(p.returncode == 0 for p in procs), [r[1][-2000:] for r in results]
    run_dirs = [Path(json.loads(out.splitlines()[-1])["run_dir"]) for out, _ in results]
    port_sets = []
    for run_dir in run_dirs:
        cluster = outputs(run_dir, "ps.json")[0]["tf_config"]["cluster"]
        port_sets.append({int(h.split(":")[1]) for hosts in cluster.values() for h in hosts})
    assert len(port_sets[0]) == len(port_sets[1]) == 4 and not port_sets[0] & port_sets[1]
    starts = [read_status(d)["start_time"] for d in run_dirs]
    ends = [read_status(d)["end_time"] for d in run_dirs]
    assert max(starts) < min(ends), "the two jobs must have run at the same time"


@pytest.mark.slurm
def test_each_rank_sees_its_own_gpu_and_ps_none(slurm: dict, tmp_path: Path) -> None:
    src = project(tmp_path, "dump")
    config = write_config(
        tmp_path / "gpu.yaml",
        experiment="gpu",
        source_directory=str(src),
        entry_script="train.py",
        distributed_backend="ps",
        ps_mode="script",
        node_count=2,
        process_count_per_node=2,
        worker_count=2,
        use_gpu=True,
    )
    explained = json.loads(hpc("explain", str(config), "--nodelist", "n[1-2]", "--json").stdout)
    proc, run_dir = run(config, "slurm", tmp_path / "runs", timeout=120)
    assert proc.returncode == 0, proc.stderr
    ranks = outputs(run_dir, "rank-*.json")
    assert [(r["tf_config"]["task"]["type"], r["host"], r["cvd"]) for r in ranks] == [
        ("chief", "n1", "0"),
        ("ps", "n1", ""),
        ("worker", "n2", "0"),
        ("worker", "n2", "1"),
    ]
    assert [(row["role"], row["node"], row["gpus"]) for row in explained] == [
        ("chief", "n1", "0"),
        ("ps", "n1", ""),
        ("worker", "n2", "0"),
        ("worker", "n2", "1"),
    ]
    assert all(r["legacy"] == "1" for r in ranks)  # tf-keras by default for distributed jobs


@pytest.mark.parametrize(
    "config, check", [("parameter-server.yaml", "loss"), ("multiworker.yaml", "workers"), ("horovod.yaml", "size")]
)
def test_distributed_examples_run_locally(tmp_path: Path, config: str, check: str) -> None:
    """The same layouts as local processes on this machine (Horovod under a local mpirun)."""
    proc, run_dir = run(
        REPO / "configs" / config, "local", tmp_path / "runs", "--set", "max_run_duration_seconds=240", timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert check in outputs(run_dir, "metrics.json")[0]
    assert read_status(run_dir)["state"] == "COMPLETED"


def test_missing_tensorflow_is_refused_before_submission(tmp_path: Path) -> None:
    """A real interpreter without TensorFlow: the error names what is missing and how to install it."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run(
        [
            str(py),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "submitit",
            "jinja2",
            "pyyaml",
            "msgspec",
            "filelock",
            "pathspec<1",
        ],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [
            str(py),
            "-m",
            "hpc_tf",
            "submit",
            str(REPO / "configs" / "horovod.yaml"),
            "--backend",
            "local",
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert (
        "tensorflow (install: pip install 'hpc_tf[tf]'" in proc.stderr
        and "horovod (install: scripts/install-horovod.sh" in proc.stderr
    )
    assert "Traceback" not in proc.stderr and not (tmp_path / "runs").exists()


@pytest.mark.slurm
@pytest.mark.tf
@pytest.mark.parametrize("launcher", ["srun", "mpirun"])
def test_horovods_keras_callbacks_run_under_the_default_environment(slurm: dict, tmp_path: Path, launcher: str) -> None:
    """Horovod's Keras callbacks import `keras` directly (Keras 3 next to TF 2.18): the job's default
    environment makes that the tf-keras `tf.keras` is, so Horovod's published Keras examples run as written."""
    src = project(tmp_path, "horovod_keras")
    config = write_config(
        tmp_path / "hvd.yaml",
        experiment="hvdkeras",
        source_directory=str(src),
        entry_script="train.py",
        distributed_backend="mpi",
        launcher=launcher,
        node_count=2,
    )
    proc, run_dir = run(config, "slurm", tmp_path / "runs")
    assert proc.returncode == 0, (run_dir / "logs" / "rank-0.err").read_text()[-3000:]
    assert [o["rank"] for o in outputs(run_dir, "keras-*.json")] == [0, 1]


@pytest.mark.slurm
@pytest.mark.tf
def test_the_keras_alias_can_be_turned_off(slurm: dict, tmp_path: Path) -> None:
    """HPC_TF_KERAS_ALIAS=0 leaves `import keras` as Keras 3: Horovod's callbacks then fail as they do
    without hpc_tf (the failure the alias exists for)."""
    src = project(tmp_path, "horovod_keras")
    config = write_config(
        tmp_path / "hvd.yaml",
        experiment="hvdkeras",
        source_directory=str(src),
        entry_script="train.py",
        distributed_backend="mpi",
        node_count=2,
        environment_variables={"HPC_TF_KERAS_ALIAS": "0"},
    )
    proc, run_dir = run(config, "slurm", tmp_path / "runs")
    assert proc.returncode != 0 and read_status(run_dir)["state"] == "FAILED"
    errors = "".join(p.read_text() for p in (run_dir / "logs").glob("rank-*.err"))
    assert "has no attribute" in errors
