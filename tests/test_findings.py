"""Each finding of the careless-and-hostile-input review, as a test that keeps it fixed (no cluster needed)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import hpc, make_project, read_status, wait_for, write_config


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "src", "print('ok')\n")


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(f"source_directory: src\nentry_script: train.py\n{text}")
    return path


@pytest.mark.parametrize(
    "text, words",
    [
        ("experiment: a\nexperiment: b\n", "duplicate key 'experiment'"),
        ("script_params:\n  a: &a [x, x]\n  b: [*a, *a]\n", "YAML aliases (*name) are not allowed"),
        ("script_params:\n  a: &a [x, *a]\n", "YAML aliases (*name) are not allowed"),
        ("node_count: !!int abc\n", "not valid YAML"),
        ("max_run_duration_seconds: " + "9" * 400 + "\n", "max_run_duration_seconds"),
        ("compute_target:\n  time: '١٢'\n", "compute_target.time"),
        ("compute_target:\n  mem: '٤G'\n", "compute_target.mem"),
        ("entry_script: ''\n", "entry_script: must not be empty"),
        ("source_directory: ''\n", "source_directory: must not be empty"),
        ("source_directory: " + "x" * 300 + "\n", "source_directory"),
    ],
    ids=[
        "duplicate-key",
        "alias-chain",
        "self-alias",
        "bad-int-tag",
        "huge-number",
        "arabic-digits-time",
        "arabic-digits-mem",
        "empty-entry-script",
        "empty-source-directory",
        "name-too-long",
    ],
)
def test_careless_configs_are_refused_with_the_key(tmp_path: Path, project: Path, text: str, words: str) -> None:
    cfg = _config(tmp_path, text)
    if text.startswith(("entry_script", "source_directory")):  # the key given twice would be a duplicate
        cfg.write_text(text + ("entry_script: train.py\n" if text.startswith("source") else "source_directory: src\n"))
    start = time.monotonic()
    proc = hpc("validate", str(cfg), timeout=30)
    assert time.monotonic() - start < 10
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert words in proc.stderr and len(proc.stderr) < 5000


@pytest.mark.parametrize("name", ["outp", "arr", "ntasks_per_n", "job_na", "parsabl", "open_mode", "chd"])
def test_reserved_sbatch_options_cannot_be_set_by_a_prefix(tmp_path: Path, project: Path, name: str) -> None:
    cfg = _config(tmp_path, f"compute_target:\n  additional_parameters:\n    {name}: x\n")
    proc = hpc("validate", str(cfg))
    assert proc.returncode == 2 and f"compute_target.additional_parameters.{name}" in proc.stderr, proc.stderr
    assert "set by hpc_tf itself" in proc.stderr


def test_an_unquoted_time_is_the_time_it_looks_like(tmp_path: Path, project: Path) -> None:
    cfg = _config(tmp_path, "compute_target:\n  time: 1:00:00\n  mem: 4000\n")
    proc = hpc("render", str(cfg), "--backend", "slurm")
    assert proc.returncode == 0, proc.stderr
    assert "#SBATCH --time=1:00:00\n" in proc.stdout and "#SBATCH --mem=4000\n" in proc.stdout


@pytest.mark.parametrize("name", ["--version", "-c", "-"])
def test_an_entry_script_is_always_run_as_a_file(tmp_path: Path, name: str) -> None:
    make_project(tmp_path / "src", "print('ran as a file')\n", name=name)
    cfg = write_config(
        tmp_path / "c.yaml", source_directory="src", entry_script=name, script_params={"print('ran as code')": None}
    )
    proc = hpc("submit", str(cfg), "--backend", "local", "--wait", "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr
    assert "ran as a file" in proc.stdout and "ran as code" not in proc.stdout


def test_files_that_may_hold_secrets_are_readable_by_the_user_only(tmp_path: Path, project: Path) -> None:
    cfg = write_config(
        tmp_path / "c.yaml",
        source_directory="src",
        entry_script="train.py",
        environment_variables={"API_TOKEN": "s3cret"},
    )
    old = os.umask(0o022)
    try:
        proc = hpc("submit", str(cfg), "--backend", "local", "--wait", "--json", "--runs-dir", str(tmp_path / "runs"))
    finally:
        os.umask(old)
    run_dir = Path(json.loads(proc.stdout.splitlines()[-1])["run_dir"])
    for name in ("job.json", "config.yaml"):
        assert "s3cret" in (run_dir / name).read_text()
        assert stat.S_IMODE((run_dir / name).stat().st_mode) == 0o600, name


STUBBORN = """\
    import os, signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    open("outputs/pids", "w").write(f"{os.getpid()} {child.pid}")
    time.sleep(float(os.environ.get("LIFE", "600")))
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _stubborn_run(tmp_path: Path, **keys: object) -> tuple[Path, list[int]]:
    make_project(tmp_path / "src", STUBBORN)
    cfg = write_config(tmp_path / "c.yaml", source_directory="src", entry_script="train.py", **keys)
    proc = hpc("submit", str(cfg), "--backend", "local", "--json", "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(json.loads(proc.stdout.splitlines()[-1])["run_dir"])
    pids = wait_for(
        lambda: (run_dir / "outputs" / "pids").is_file() and (run_dir / "outputs" / "pids").read_text(), timeout=60
    )
    return run_dir, [int(p) for p in pids.split()]


@pytest.mark.parametrize("how", ["cancel", "timeout", "normal-exit"])
def test_the_local_backend_leaves_no_process_behind(tmp_path: Path, how: str) -> None:
    keys: dict[str, object] = {"max_run_duration_seconds": 3} if how == "timeout" else {}
    if how == "normal-exit":
        keys["environment_variables"] = {"LIFE": "1"}
    run_dir, pids = _stubborn_run(tmp_path, **keys)
    if how == "cancel":
        assert hpc("cancel", str(run_dir)).returncode == 0
    wait_for(lambda: read_status(run_dir)["final"], timeout=60)
    expected = {"cancel": "CANCELLED", "timeout": "TIMEOUT", "normal-exit": "COMPLETED"}[how]
    assert read_status(run_dir)["state"] == expected
    assert not [pid for pid in pids if _alive(pid)]


def test_a_killed_supervisor_never_leaves_the_job_running_behind_a_final_state(tmp_path: Path) -> None:
    run_dir, pids = _stubborn_run(tmp_path)
    supervisor = int(read_status(run_dir)["job_id"].removeprefix("local-"))
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: not _alive(supervisor), timeout=10)
    proc = hpc("status", str(run_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert (status["state"], status["final"]) == ("NODE_FAIL", True)
    wait_for(lambda: not [pid for pid in pids if _alive(pid)], timeout=10)


def test_finished_local_runs_are_never_rewritten_by_a_concurrent_reader(tmp_path: Path) -> None:
    """50 local jobs finish while `runs --json` polls: every run ends COMPLETED (a reader that read the
    status without the lock used to write its stale NODE_FAIL over the supervisor's final record)."""
    make_project(tmp_path / "src", "import time; time.sleep(1)\n")
    cfg = write_config(tmp_path / "c.yaml", experiment="race", source_directory="src", entry_script="train.py")
    runs = tmp_path / "runs"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "hpc_tf", "submit", str(cfg), "--backend", "local", "--runs-dir", str(runs)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        )
        for _ in range(50)
    ]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        rows = json.loads(hpc("runs", "--runs-dir", str(runs), "--json", "--limit", "0").stdout)
        if len(rows) == 50 and all(r["final"] for r in rows):
            break
    states = [read_status(d)["state"] for d in (runs / "race").iterdir()]
    assert states == ["COMPLETED"] * 50, {s: states.count(s) for s in set(states)}


DAMAGE = {
    "empty": lambda p: p.write_bytes(b""),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:40]),
    "binary": lambda p: p.write_bytes(bytes(range(256))),
    "null": lambda p: p.write_text("null"),
    "list": lambda p: p.write_text("[]"),
    "wrong-types": lambda p: p.write_text('{"state": 3, "exit_code": "zero"}'),
    "a-directory": lambda p: (p.unlink(), p.mkdir()),
    "dangling-link": lambda p: (p.unlink(), p.symlink_to(p.parent / "nowhere")),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_run_never_breaks_the_tools_for_the_others(tmp_path: Path, damage: str) -> None:
    make_project(tmp_path / "src", "print('ok')\n")
    cfg = write_config(tmp_path / "c.yaml", experiment="dmg", source_directory="src", entry_script="train.py")
    runs = tmp_path / "runs"
    dirs = [
        Path(
            json.loads(
                hpc(
                    "submit", str(cfg), "--backend", "local", "--wait", "--json", "--runs-dir", str(runs)
                ).stdout.splitlines()[-1]
            )["run_dir"]
        )
        for _ in range(2)
    ]
    bad, good = dirs
    DAMAGE[damage](bad / "status.json")
    proc = hpc("runs", "--runs-dir", str(runs), "--json")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    rows = {r["run_id"]: r["state"] for r in json.loads(proc.stdout)}
    assert rows == {good.name: "COMPLETED", bad.name: "DAMAGED"}
    for command in ("status", "wait", "logs", "metrics"):
        proc = hpc(command, str(bad), "--json")
        assert proc.returncode in (0, 1, 2) and "Traceback" not in proc.stderr, (command, proc.stderr)
        if command in ("status", "wait"):
            assert proc.returncode == 1 and "status.json" in json.loads(proc.stdout.splitlines()[-1])["error"]
    assert hpc("status", str(good)).returncode == 0
