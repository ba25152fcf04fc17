"""Jobs on the real 4-node Slurm dev cluster, started by the repo's own script; asserts on run-directory files."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest

from hpc_tf import Experiment, Run, TensorFlow
from hpc_tf.errors import JobFailedError

from .conftest import HOSTILE, hpc, make_project, read_status, wait_for, write_config

pytestmark = pytest.mark.slurm

TINY_KERAS = """\
    import json, math, os, sys
    import numpy as np
    import tensorflow as tf

    x = np.random.default_rng(0).random((64, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=2)
    loss = float(history.history["loss"][-1])
    print(f"final loss {loss:.4f}", flush=True)
    print("a warning on stderr", file=sys.stderr)
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/result.json", "w") as f:
        json.dump({"loss": loss, "argv": sys.argv[1:], "tf": tf.__version__, "host": os.uname().nodename}, f)
"""

ARGV_DUMP = """\
    import json, os, sys
    os.makedirs("outputs", exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k.startswith("HOSTILE_")}
    with open("outputs/argv.json", "w", encoding="utf-8") as f:
        json.dump({"argv": sys.argv[1:], "env": env, "cwd": os.getcwd(), "data": open("data.txt").read()}, f)
"""


def submit_wait(config: Path, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return hpc("submit", str(config), "--backend", "slurm", "--wait", "--json", *extra, timeout=timeout)


def test_tensorflow_training_completes_with_run_directory(slurm: dict, tmp_path: Path) -> None:
    make_project(tmp_path / "src", TINY_KERAS)
    config = write_config(
        tmp_path / "tf.yaml",
        experiment="tf-smoke",
        source_directory="src",
        entry_script="train.py",
        script_params={"--batch-size": 50, "--learning-rate": 0.01},
    )
    rendered = hpc("render", str(config), "--backend", "slurm").stdout
    proc = submit_wait(config, "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout.splitlines()[-1])
    run_dir = Path(info["run_dir"])
    status = read_status(run_dir)
    assert status["state"] == "COMPLETED" and status["exit_code"] == 0
    assert status["backend"] == "slurm" and status["job_id"] == info["job_id"]
    assert status["nodes"] == ["n1"] and status["start_time"] and status["end_time"]
    result = json.loads((run_dir / "outputs" / "result.json").read_text())
    assert result["argv"] == ["--batch-size", "50", "--learning-rate", "0.01"]
    assert math.isfinite(result["loss"]) and result["host"] == "n1"
    assert "final loss" in (run_dir / "logs" / "rank-0.out").read_text()
    assert "a warning on stderr" in (run_dir / "logs" / "rank-0.err").read_text()
    assert (run_dir / "job.sh").read_text() == rendered
    assert (run_dir / "snapshot" / "train.py").is_file() and (run_dir / "config.yaml").is_file()


def test_hostile_values_are_received_literally_and_nothing_runs(slurm: dict, tmp_path: Path) -> None:
    src = make_project(tmp_path / "src", ARGV_DUMP, **{"data.txt": "v1"})
    params = {f"--p{i}": value for i, value in enumerate(HOSTILE)}
    params["--list"] = ["$(touch PWNED)", "`touch PWNED`"]
    params["; touch PWNED"] = None
    env = {f"HOSTILE_{i}": value for i, value in enumerate(HOSTILE)}
    config = write_config(
        tmp_path / "c.yaml",
        experiment="hostile",
        source_directory=str(src),
        entry_script="train.py",
        script_params=params,
        environment_variables=env,
        compute_target={"additional_parameters": {"comment": "it's $(touch PWNED) #not a comment"}},
    )
    proc = submit_wait(config, "--runs-dir", str(tmp_path / "runs"), timeout=120)
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(json.loads(proc.stdout.splitlines()[-1])["run_dir"])
    got = json.loads((run_dir / "outputs" / "argv.json").read_text(encoding="utf-8"))
    expected = []
    for key, value in params.items():
        if value is None:
            expected.append(key)
        elif isinstance(value, list):
            for item in value:
                expected += [key, item]
        else:
            expected += [key, value]
    assert got["argv"] == expected
    assert got["env"] == env
    assert Path(got["cwd"]) == run_dir / "snapshot"
    job_id = read_status(run_dir)["job_id"]
    comment = subprocess.run(
        ["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%k"], capture_output=True, text=True
    ).stdout
    assert comment.rstrip("\n") in ("it's $(touch PWNED) #not a comment", "")  # "" once the job left squeue
    assert not list(tmp_path.rglob("PWNED")) and not Path("PWNED").exists()


def test_failing_script_ends_failed_with_its_exit_code(slurm: dict, tmp_path: Path) -> None:
    make_project(
        tmp_path / "src",
        "import sys\nprint('about to fail')\nprint('the real reason: bad data', file=sys.stderr)\nsys.exit(3)\n",
    )
    config = write_config(tmp_path / "c.yaml", experiment="fails", source_directory="src", entry_script="train.py")
    proc = submit_wait(config, "--runs-dir", str(tmp_path / "runs"), timeout=120)
    assert proc.returncode == 3
    assert "ended FAILED with exit code 3" in proc.stderr and "the real reason: bad data" in proc.stderr
    run_dir = Path(json.loads(proc.stdout.splitlines()[-1])["run_dir"])
    status = read_status(run_dir)
    assert (status["state"], status["exit_code"], status["final"]) == ("FAILED", 3, True)


def test_cancelled_job_ends_cancelled_and_its_processes_are_gone(slurm: dict, tmp_path: Path) -> None:
    script = "import os, time\nos.makedirs('outputs', exist_ok=True)\nopen('outputs/pid', 'w').write(str(os.getpid()))\ntime.sleep(300)\n"
    make_project(tmp_path / "src", script)
    config = write_config(tmp_path / "c.yaml", experiment="cancel", source_directory="src", entry_script="train.py")
    proc = hpc("submit", str(config), "--backend", "slurm", "--json", "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(json.loads(proc.stdout)["run_dir"])
    pid_file = run_dir / "outputs" / "pid"
    wait_for(pid_file.exists, timeout=60)
    pid = int(wait_for(pid_file.read_text))
    assert hpc("cancel", str(run_dir)).returncode == 0
    waited = hpc("wait", str(run_dir), timeout=120)
    assert waited.returncode != 0 and "CANCELLED" in waited.stderr
    assert read_status(run_dir)["state"] == "CANCELLED"
    wait_for(
        lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2], timeout=30
    )


def test_snapshot_is_taken_at_submit_time_and_honours_hpctfignore(slurm: dict, tmp_path: Path) -> None:
    src = make_project(
        tmp_path / "src",
        ARGV_DUMP,
        **{"data.txt": "v1", ".hpctfignore": "*.ckpt\nscratch/\n", "model.ckpt": "x" * 1000, "scratch/tmp.txt": "t"},
    )
    config = write_config(
        tmp_path / "c.yaml",
        experiment="snap",
        source_directory=str(src),
        entry_script="train.py",
        compute_target={"additional_parameters": {"hold": True}},
    )
    proc = hpc("submit", str(config), "--backend", "slurm", "--json", "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    (src / "data.txt").write_text("v2, edited after submit")
    subprocess.run(["scontrol", "release", info["job_id"]], check=True)
    assert hpc("wait", info["run_dir"], timeout=120).returncode == 0
    run_dir = Path(info["run_dir"])
    assert json.loads((run_dir / "outputs" / "argv.json").read_text())["data"] == "v1"
    snap = {p.relative_to(run_dir / "snapshot").as_posix() for p in (run_dir / "snapshot").rglob("*")}
    assert "model.ckpt" not in snap and "scratch" not in snap and "data.txt" in snap


def test_python_api_submits_and_waits(slurm: dict, tmp_path: Path) -> None:
    src = make_project(tmp_path / "src", ARGV_DUMP, **{"data.txt": "api"})
    est = TensorFlow(
        source_directory=str(src),
        entry_script="train.py",
        script_params={"--epochs": 1},
        compute_target={"partition": "debug", "time": "5"},
    )
    run = Experiment("api", runs_dir=tmp_path / "runs").submit(est)
    status = run.wait_for_completion(show_output=False)
    assert status.state == "COMPLETED" and status.backend == "slurm"
    assert run.run_dir.parent == (tmp_path / "runs" / "api").absolute()
    assert Run(run.run_dir).status().state == "COMPLETED"
    assert json.loads((run.run_dir / "outputs" / "argv.json").read_text())["argv"] == ["--epochs", "1"]


def test_python_api_raises_with_stderr_tail_on_failure(slurm: dict, tmp_path: Path) -> None:
    src = make_project(tmp_path / "src", "raise SystemExit('boom: the loss went NaN')\n")
    run = Experiment("apifail", runs_dir=tmp_path / "runs").submit(
        TensorFlow(source_directory=str(src), entry_script="train.py"), backend="slurm"
    )
    with pytest.raises(JobFailedError) as info:
        run.wait_for_completion()
    assert info.value.state == "FAILED" and info.value.exit_code == 1
    assert "boom: the loss went NaN" in str(info.value)


def _square(x: int) -> tuple[int, str]:
    return x * x, os.environ.get("SLURM_JOB_PARTITION", "")


def test_configured_submitit_executor_runs_user_functions(slurm: dict, tmp_path: Path) -> None:
    src = make_project(tmp_path / "src", "pass\n")
    est = TensorFlow(
        source_directory=str(src),
        entry_script="train.py",
        compute_target={"partition": "debug"},
        max_run_duration_seconds=300,
    )
    executor = est.executor(folder=tmp_path / "submitit")
    assert type(executor).__name__ == "SlurmExecutor"
    extra = executor.parameters["additional_parameters"]
    assert extra["partition"] == "debug" and extra["time"] == "0-00:05:00"
    job = executor.submit(_square, 7)
    assert job.result() == (49, "debug")
