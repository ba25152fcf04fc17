"""The CLI as a user meets it: exit statuses, messages without tracebacks, render == what submit submits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import hpc, make_project, read_status, write_config


@pytest.fixture
def config(tmp_path: Path) -> Path:
    make_project(tmp_path / "src", "print('hello from the job')\n")
    return write_config(tmp_path / "job.yaml", experiment="cli", source_directory="src", entry_script="train.py")


@pytest.mark.parametrize(
    "keys, words",
    [
        ({"entry_scrpit": "train.py"}, "entry_scrpit: unknown key; did you mean 'entry_script'?"),
        ({"node_count": -1}, "node_count: expected an integer >= 1 (got -1)"),
        ({"distributed_backend": "ring"}, "distributed_backend: unknown distributed backend; valid values"),
    ],
)
def test_bad_config_exits_2_naming_file_key_value(tmp_path: Path, config: Path, keys: dict, words: str) -> None:
    data = {**json.loads(config.read_text()), **keys}
    bad = write_config(tmp_path / "bad.yaml", **data)
    for command in ("validate", "render", "submit"):
        proc = hpc(command, str(bad), *(["--runs-dir", str(tmp_path / "runs")] if command == "submit" else []))
        assert proc.returncode == 2, proc.stderr
        assert f"{bad}: {words}" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists(), "nothing may touch disk before validation passed"


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    proc = hpc("validate", str(tmp_path / "missing.yaml"), "--debug")
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "config file not found" in proc.stderr


def test_bad_set_and_backend_arguments(config: Path) -> None:
    proc = hpc("validate", str(config), "--set", "node_count")
    assert proc.returncode == 2 and "--set: node_count: expected KEY=VALUE" in proc.stderr
    proc = hpc("render", str(config), "--backend", "cloud")
    assert proc.returncode == 2 and "invalid choice: 'cloud'" in proc.stderr


def test_validate_ok(config: Path) -> None:
    proc = hpc("validate", str(config))
    assert proc.returncode == 0 and "valid" in proc.stdout


def test_local_submit_json_wait_and_render_matches(tmp_path: Path, config: Path) -> None:
    runs = tmp_path / "runs"
    rendered = hpc("render", str(config), "--backend", "local").stdout
    proc = hpc("submit", str(config), "--backend", "local", "--runs-dir", str(runs), "--json", "--wait")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert set(info) >= {"run_id", "job_id", "run_dir", "backend"} and info["backend"] == "local"
    run_dir = Path(info["run_dir"])
    assert run_dir.parent == runs / "cli"
    assert (run_dir / "job.sh").read_text() == rendered
    assert "hello from the job" in proc.stderr  # with --json the job's output is streamed to stderr
    assert read_status(run_dir)["state"] == "COMPLETED"


def test_runs_dir_from_environment(tmp_path: Path, config: Path) -> None:
    proc = hpc(
        "submit", str(config), "--backend", "local", "--json", env={"HPC_TF_RUNS_DIR": str(tmp_path / "envruns")}
    )
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(json.loads(proc.stdout)["run_dir"])
    assert run_dir.parent.parent == tmp_path / "envruns"
    assert hpc("wait", str(run_dir)).returncode == 0


def test_a_submission_that_fails_after_the_run_is_claimed_ends_failed_and_is_listed(tmp_path: Path) -> None:
    """Submission is one transaction: a step failing after the run directory exists (here: a source file
    named `outputs`, where the job's ./outputs must go) leaves a FAILED run with the message, listed by `runs`."""
    make_project(tmp_path / "src", "print('x')\n", outputs="not a folder")
    cfg = write_config(tmp_path / "job.yaml", experiment="tx", source_directory="src", entry_script="train.py")
    runs = tmp_path / "runs"
    proc = hpc("submit", str(cfg), "--backend", "local", "--runs-dir", str(runs))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "entry named 'outputs'" in proc.stderr
    (run_dir,) = (runs / "tx").iterdir()
    status = read_status(run_dir)
    assert (status["state"], status["final"]) == ("FAILED", True) and "outputs" in status["message"]
    rows = json.loads(hpc("runs", "--runs-dir", str(runs), "--json").stdout)
    assert [(r["run_id"], r["state"]) for r in rows] == [(run_dir.name, "FAILED")]


def test_render_needs_no_cluster(config: Path) -> None:
    """A dry run asks no scheduler: `render --backend slurm` works with no Slurm answering."""
    proc = hpc("render", str(config), "--backend", "slurm", env={"SLURM_CONF": "/nonexistent/slurm.conf"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("#!/bin/bash") and "#SBATCH --job-name=cli" in proc.stdout
