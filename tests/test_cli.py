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
    proc = hpc("submit", str(config), "--backend", "local", "--json", env={"HPC_TF_RUNS_DIR": str(tmp_path / "envruns")})
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(json.loads(proc.stdout)["run_dir"])
    assert run_dir.parent.parent == tmp_path / "envruns"
    assert hpc("wait", str(run_dir)).returncode == 0
