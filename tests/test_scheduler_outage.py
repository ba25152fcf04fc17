"""A scheduler that does not answer never rewrites a run: the controller stopped for real under a running
2-node job, a sacct that times out (a PATH wrapper that sleeps: a real sacct cannot be made to hang on
purpose), and one translation of compute_target options read back from Slurm for both submit paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpc_tf import TensorFlow
from hpc_tf.runs.follow import Run, Watcher
from hpc_tf.settings import Settings

from .conftest import CLUSTER, hpc, make_project, read_status, wait_for, write_config

SLOW_TWO_NODES = """\
    import os, time
    time.sleep(float(os.environ["SLEEP"]))
    if os.environ["HPC_TF_RANK"] == "0":
        open("outputs/done-0.txt", "w").write("done")
    print("finished", os.environ["HPC_TF_RANK"], flush=True)
"""
BOUND_SECONDS = 10.0  # HPC_TF_SCHEDULER_TIMEOUT (5 s) + interpreter start-up, with room for a busy machine


def cluster(verb: str, *args: str) -> None:
    proc = subprocess.run([str(CLUSTER), verb, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def timed_json(*args: str) -> tuple[float, object]:
    start = time.monotonic()
    proc = hpc(*args, "--json", timeout=60)
    took = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    return took, json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.slurm
def test_controller_stopped_under_a_running_job_never_rewrites_it(slurm: dict, tmp_path: Path) -> None:
    src = make_project(tmp_path / "src", SLOW_TWO_NODES)
    cfg = write_config(
        tmp_path / "c.yaml",
        experiment="outage",
        source_directory=str(src),
        entry_script="train.py",
        distributed_backend="mpi",
        node_count=2,
        environment_variables={"SLEEP": "25"},
    )
    runs = tmp_path / "runs"
    proc = hpc("submit", str(cfg), "--backend", "slurm", "--json", "--runs-dir", str(runs))
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(json.loads(proc.stdout.splitlines()[-1])["run_dir"])
    wait_for(lambda: read_status(run_dir)["state"] == "RUNNING", timeout=60)
    cluster("stop-controller")
    try:
        waiter = subprocess.Popen(
            [sys.executable, "-m", "hpc_tf", "wait", str(run_dir)],
            stderr=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path.cwd())},
        )
        for _ in range(3):
            took, status = timed_json("status", str(run_dir))
            assert took < BOUND_SECONDS, f"`status` took {took:.1f} s with the controller down"
            assert isinstance(status, dict)
            assert (status["state"], status["final"]) == ("RUNNING", False)
            assert status["scheduler_unreachable_since"] and status["scheduler_error"]
            took, rows = timed_json("runs", "--runs-dir", str(runs))
            assert took < BOUND_SECONDS and isinstance(rows, list)
            assert [(r["state"], r["final"]) for r in rows] == [("RUNNING", False)]
            assert read_status(run_dir)["state"] == "RUNNING"
        text = hpc("status", str(run_dir)).stdout
        assert "scheduler not answering since" in text
        time.sleep(25)  # the job ends while the controller is down
        assert read_status(run_dir)["state"] == "RUNNING" and not read_status(run_dir)["final"]
    finally:
        cluster("start-controller")
    out, err = waiter.communicate(timeout=180)
    assert waiter.returncode == 0, err
    assert "scheduler not answering since" in err
    status = read_status(run_dir)
    assert (status["state"], status["exit_code"], status["final"]) == ("COMPLETED", 0, True)
    assert status["scheduler_unreachable_since"] is None
    assert (run_dir / "outputs" / "done-0.txt").read_text() == "done"


def _sleeping_sacct(tmp_path: Path) -> tuple[str, Path]:
    """sacct that hangs (answers after 30 s), squeue that is counted: PATH wrappers around the real tools."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    (bin_dir / "sacct").write_text(f'#!/bin/sh\necho "sacct $*" >> "{log}"\nsleep 30\n')
    real = subprocess.run(["which", "squeue"], capture_output=True, text=True, check=True).stdout.strip()
    (bin_dir / "squeue").write_text(f'#!/bin/sh\necho "squeue $*" >> "{log}"\nexec "{real}" "$@"\n')
    for tool in ("sacct", "squeue"):
        (bin_dir / tool).chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}", log


@pytest.mark.slurm
def test_a_sacct_timeout_is_no_answer_and_does_not_switch_to_squeue(
    slurm: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_project(tmp_path / "src", "import time; time.sleep(20)\n")
    cfg = write_config(tmp_path / "c.yaml", experiment="sacct", source_directory=str(src), entry_script="train.py")
    proc = hpc("submit", str(cfg), "--backend", "slurm", "--json", "--runs-dir", str(tmp_path / "runs"))
    run_dir = Path(json.loads(proc.stdout.splitlines()[-1])["run_dir"])
    path, log = _sleeping_sacct(tmp_path)
    monkeypatch.setenv("PATH", path)
    settings = Settings.from_env({**os.environ, "HPC_TF_SCHEDULER_TIMEOUT": "1"})
    watcher, run = Watcher(settings), Run(run_dir, settings)
    for _ in range(2):
        start = time.monotonic()
        status = watcher.refresh([run])[0]
        assert time.monotonic() - start < 5
        assert not status.final and status.scheduler_unreachable_since
        assert "sacct did not answer within 1 s" in status.scheduler_error
    calls = log.read_text().splitlines()
    assert [c.split()[0] for c in calls] == ["sacct", "sacct"]  # never switched to squeue
    assert watcher.backend("slurm").accounting is not False  # type: ignore[attr-defined]
    subprocess.run(["scancel", str(read_status(run_dir)["job_id"])], check=False)


def _scontrol_job(job_id: str) -> dict[str, str]:
    text = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, check=True).stdout
    return dict(item.split("=", 1) for item in text.split() if "=" in item)


OPTION_CASES = [
    pytest.param(
        {"additional_parameters": {"exclusive": None, "hold": True}},
        None,
        {"OverSubscribe": "NO"},
        id="exclusive-null-is-a-bare-flag",
    ),
    pytest.param(
        {"additional_parameters": {"exclusive": False, "hold": True}},
        None,
        {"OverSubscribe": "OK"},
        id="exclusive-false-is-left-out",
    ),
    pytest.param(
        {"time": "7", "additional_parameters": {"hold": True}}, None, {"TimeLimit": "00:07:00"}, id="time-in-minutes"
    ),
    pytest.param(
        {"additional_parameters": {"hold": True}}, 150, {"TimeLimit": "00:03:00"}, id="max-run-duration-rounded-up"
    ),
    pytest.param(
        {"gpus_per_node": 1, "additional_parameters": {"hold": True}},
        None,
        {"TresPerNode": "gres:gpu:1"},
        id="gpus-per-node",
    ),
]


@pytest.mark.slurm
@pytest.mark.parametrize("target, max_seconds, expected", OPTION_CASES)
def test_job_script_and_executor_ask_slurm_for_the_same_options(
    slurm: dict, tmp_path: Path, target: dict, max_seconds: int | None, expected: dict
) -> None:
    src = make_project(tmp_path / "src", "pass\n")
    keys = {"max_run_duration_seconds": max_seconds} if max_seconds else {}
    use_gpu = {"use_gpu": True} if "gpus_per_node" in target else {}
    cfg = write_config(
        tmp_path / "c.yaml",
        experiment="opts",
        source_directory=str(src),
        entry_script="train.py",
        compute_target=target,
        **keys,
        **use_gpu,
    )
    proc = hpc("submit", str(cfg), "--json", "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr
    script_job = str(json.loads(proc.stdout.splitlines()[-1])["job_id"])
    est = TensorFlow(source_directory=str(src), entry_script="train.py", compute_target=target, **keys, **use_gpu)
    executor_job = str(est.executor(folder=tmp_path / "submitit").submit(print, "x").job_id)
    try:
        via_script, via_executor = _scontrol_job(script_job), _scontrol_job(executor_job)
        for key, value in expected.items():
            assert via_script.get(key) == value, (key, via_script.get(key))
            assert via_executor.get(key) == value, (key, via_executor.get(key))
    finally:
        subprocess.run(["scancel", script_job, executor_job], check=False)
