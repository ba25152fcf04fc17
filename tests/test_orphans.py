"""A process the entry script detaches (`setsid`, `setsid -f`: a new session, so neither Slurm's proctrack/pgid nor
the local backend's session reaches it) ends with the task: at the script's exit, at a cancel and at the time
limit, on both backends (issue 19). The daemon carries a unique word in its argv; after the run's end no process
may have it, and rank 0's stderr names what the runtime ended."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import hpc, make_project, read_status, write_config

DAEMON = """
import subprocess, sys, time
mark = sys.argv[sys.argv.index("--mark") + 1]
detach = ["setsid", "-f"] if "--fork" in sys.argv else ["setsid"]
subprocess.Popen([*detach, sys.executable, "-c", "import time; time.sleep(900)", mark])
print("daemon started", flush=True)
time.sleep(float(sys.argv[sys.argv.index("--sleep") + 1]))
"""


def _with_mark(mark: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and mark.encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            pass
    return found


def _submit(tmp_path: Path, backend: str, sleep: float, fork: bool, limit: int | None = None) -> tuple[Path, str]:
    mark = f"hpc_tf-orphan-{uuid.uuid4().hex}"
    src = make_project(tmp_path / "src", DAEMON)
    params: dict[str, object] = {"--mark": mark, "--sleep": sleep}
    if fork:
        params["--fork"] = ""
    keys: dict[str, object] = {"max_run_duration_seconds": limit} if limit else {}
    cfg = write_config(tmp_path / "c.yaml", experiment="orphans", source_directory=str(src),
                       entry_script="train.py", script_params=params, **keys)  # fmt: skip
    proc = hpc("submit", str(cfg), "--backend", backend, "--json", "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr
    return Path(json.loads(proc.stdout.splitlines()[-1])["run_dir"]), mark


def _wait_started(run_dir: Path, mark: str) -> None:
    deadline = time.monotonic() + 120
    while not _with_mark(mark):
        assert time.monotonic() < deadline, "the daemon never started"
        time.sleep(0.2)


def _gone(mark: str) -> bool:
    deadline = time.monotonic() + 5  # the runtime has ended it before the run's end is recorded; /proc may lag
    while _with_mark(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _with_mark(mark)


CASES = [  # (backend, how it ends, setsid -f?)
    ("local", "exit", True),
    ("local", "exit", False),
    ("local", "cancel", True),
    ("local", "time limit", True),
    pytest.param("slurm", "exit", True, marks=pytest.mark.slurm),
    pytest.param("slurm", "cancel", True, marks=pytest.mark.slurm),
    pytest.param("slurm", "cancel", False, marks=pytest.mark.slurm),
]


@pytest.mark.parametrize(("backend", "how", "fork"), CASES)
def test_a_detached_process_ends_with_the_task(request: pytest.FixtureRequest, tmp_path: Path, backend: str,
                                               how: str, fork: bool) -> None:  # fmt: skip
    if backend == "slurm":
        request.getfixturevalue("slurm")
    sleep = 0.5 if how == "exit" else 600
    limit = 5 if how == "time limit" else None  # local; Slurm's own test is below
    run_dir, mark = _submit(tmp_path, backend, sleep, fork, limit)
    _wait_started(run_dir, mark)
    if how == "cancel":
        assert hpc("cancel", str(run_dir)).returncode == 0
    hpc("wait", str(run_dir), timeout=300)
    status = read_status(run_dir)
    expected = {"exit": "COMPLETED", "cancel": "CANCELLED", "time limit": "TIMEOUT"}[how]
    assert (status["state"], status["final"]) == (expected, True), status
    assert _gone(mark), f"{_with_mark(mark)} outlived the run ({how}, {backend})"
    if how == "exit":  # the runtime says what it ended
        assert "left running" in (run_dir / "logs" / "rank-0.err").read_text()


@pytest.mark.slurm
def test_a_detached_process_ends_at_the_slurm_time_limit(slurm: dict, tmp_path: Path) -> None:
    """Slurm's time limit: SIGTERM to the step's process group, SIGKILL KillWait later; the daemon is in neither."""
    run_dir, mark = _submit(tmp_path, "slurm", 600, True, limit=60)
    _wait_started(run_dir, mark)
    hpc("wait", str(run_dir), timeout=300)
    assert read_status(run_dir)["state"] == "TIMEOUT"
    assert _gone(mark), f"{_with_mark(mark)} outlived the time limit"
