"""The local backend (the embedded default): same run directory, same states, on this machine."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from hpc_tf.rundir import RunDir

from .conftest import REPO, hpc, make_project, read_status, wait_for, write_config


def test_example_config_trains_digits_locally(tmp_path: Path) -> None:
    """The README's first command: the seed's single-node example, real TensorFlow, no Slurm."""
    proc = hpc(
        "submit",
        "configs/digits.yaml",
        "--backend",
        "local",
        "--wait",
        "--json",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--set",
        "script_params.--epochs=2",
    )
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(json.loads(proc.stdout.splitlines()[-1])["run_dir"])
    status = read_status(run_dir)
    assert (status["state"], status["exit_code"], status["backend"]) == ("COMPLETED", 0, "local")
    metrics = json.loads((run_dir / "outputs" / "metrics.json").read_text())
    assert metrics["batch_size"] == 50 and metrics["learning_rate"] == 0.01 and metrics["accuracy"] > 0.5
    assert "test accuracy" in (run_dir / "logs" / "rank-0.out").read_text()


def test_failure_timeout_and_cancel_states(tmp_path: Path) -> None:
    make_project(tmp_path / "fail", "import sys\nprint('bad input', file=sys.stderr)\nsys.exit(7)\n")
    make_project(
        tmp_path / "slow",
        "import os, time\nos.makedirs('outputs', exist_ok=True)\nopen('outputs/started', 'w').close()\ntime.sleep(120)\n",
    )
    fail = write_config(tmp_path / "fail.yaml", experiment="fail", source_directory="fail", entry_script="train.py")
    timeout = write_config(
        tmp_path / "timeout.yaml",
        experiment="timeout",
        source_directory="slow",
        entry_script="train.py",
        max_run_duration_seconds=2,
    )
    slow = write_config(tmp_path / "slow.yaml", experiment="slow", source_directory="slow", entry_script="train.py")
    runs = ["--backend", "local", "--json", "--runs-dir", str(tmp_path / "runs")]

    proc = hpc("submit", str(fail), *runs, "--wait")
    assert proc.returncode == 7 and "bad input" in proc.stderr and "ended FAILED with exit code 7" in proc.stderr

    proc = hpc("submit", str(timeout), *runs, "--wait", timeout=60)
    assert proc.returncode != 0 and "ended TIMEOUT" in proc.stderr
    assert read_status(json.loads(proc.stdout.splitlines()[-1])["run_dir"])["state"] == "TIMEOUT"

    run_dir = Path(json.loads(hpc("submit", str(slow), *runs).stdout)["run_dir"])
    wait_for((run_dir / "outputs" / "started").exists, timeout=30)
    assert hpc("cancel", run_dir.name, "--runs-dir", str(tmp_path / "runs")).returncode == 0
    wait_for(lambda: read_status(run_dir).get("final"), timeout=30)
    assert read_status(run_dir)["state"] == "CANCELLED"


def test_run_directories_are_never_shared(tmp_path: Path) -> None:
    made: list[Path] = []
    lock = threading.Lock()

    def create() -> None:
        for _ in range(20):
            run = RunDir.create(tmp_path, "same-second")
            with lock:
                made.append(run.path)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == len(set(made)) == 160


def test_concurrent_cli_submits_get_distinct_run_directories(tmp_path: Path) -> None:
    make_project(tmp_path / "src", "print('hi')\n")
    config = write_config(tmp_path / "c.yaml", experiment="burst", source_directory="src", entry_script="train.py")
    argv = [
        sys.executable,
        "-m",
        "hpc_tf",
        "submit",
        str(config),
        "--backend",
        "local",
        "--json",
        "--runs-dir",
        str(tmp_path / "runs"),
    ]
    procs = [subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, text=True) for _ in range(5)]
    dirs = {json.loads(p.communicate()[0])["run_dir"] for p in procs}
    assert len(dirs) == 5
    for d in dirs:
        wait_for(lambda: read_status(d).get("final"), timeout=60)
        assert read_status(d)["state"] == "COMPLETED"


def test_snapshot_size_cap_is_a_clear_error(tmp_path: Path) -> None:
    make_project(tmp_path / "src", "pass\n", **{"data/big.bin": "x" * 3_000_000})
    config = write_config(tmp_path / "c.yaml", source_directory="src", entry_script="train.py")
    proc = hpc(
        "submit",
        str(config),
        "--backend",
        "local",
        "--runs-dir",
        str(tmp_path / "runs"),
        env={"HPC_TF_SNAPSHOT_MAX_MB": "1"},
    )
    assert proc.returncode == 2
    assert "over the 1 MiB cap" in proc.stderr and "data (2.9 MiB)" in proc.stderr and ".hpctfignore" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()
