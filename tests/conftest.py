"""Shared fixtures: the real Slurm dev cluster, run directories, projects to submit, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parent.parent
CLUSTER = REPO / "scripts" / "dev-cluster.sh"


def worker_cluster() -> dict[str, str]:
    """Which dev cluster this pytest process uses: the default instance without xdist and on worker gw0; worker gwN
    its own (its directory and port). So a test that breaks its cluster on purpose (stops the controller, downs a
    node, preempts with the `high` partition, restarts it with accounting) never touches another worker's jobs, and
    two workers' jobs never queue behind each other on the same 4 nodes."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    n = int(worker[2:]) if worker[2:].isdigit() else 0
    if n == 0:
        return {}
    return {"HPC_TF_CLUSTER_DIR": f"/var/tmp/hpc_tf-cluster-gw{n}", "HPC_TF_CLUSTER_PORT": str(20817 + 100 * n)}


def _cluster_env(env: dict[str, str]) -> dict[str, str]:
    """The variables `dev-cluster.sh env` says to use (SLURM_CONF, …)."""
    text = subprocess.run([str(CLUSTER), "env"], capture_output=True, text=True, env=env, check=True).stdout
    return dict(
        item.split("=", 1) for line in text.splitlines() for item in line.removeprefix("export ").split() if "=" in item
    )


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[dict[str, str]]:
    """Bring up this process's 4-node dev cluster (scripts/dev-cluster.sh, `worker_cluster`); a cluster that can't
    start fails the test. A cluster that was already up is left running; one this session started is stopped at
    the end. Its variables go into os.environ, so every command a test runs (hpc, squeue, dev-cluster.sh) uses it."""
    os.environ.update(worker_cluster())
    was_up = subprocess.run([str(CLUSTER), "status"], capture_output=True).returncode == 0
    up = subprocess.run([str(CLUSTER), "up"], capture_output=True, text=True)
    if up.returncode != 0:  # once more, traced: a failure that printed nothing must still say where it stopped
        again = subprocess.run(["bash", "-x", str(CLUSTER), "up"], capture_output=True, text=True)
        if again.returncode != 0:
            pytest.fail(
                f"the Slurm dev cluster did not start (exit {up.returncode}, then {again.returncode} traced; "
                f"{worker_cluster() or 'default instance'}):\n{up.stdout}\n{up.stderr}\n--- traced:\n"
                f"{again.stderr[-4000:]}",
                pytrace=False,
            )
    exported = {**worker_cluster(), **_cluster_env(dict(os.environ))}
    os.environ.update(exported)
    yield exported
    if not was_up:
        subprocess.run([str(CLUSTER), "down"], capture_output=True)


def cluster_instance(name: str, port: str, **knobs: str) -> Iterator[dict[str, str]]:
    """Another dev cluster for one module's tests (its own directory, port and knobs: HPC_TF_CLUSTER_NODES,
    HPC_TF_CLUSTER_HETJOB_STEPS, …), so the default one's configuration stays as every other test expects.
    Yields the variables to give the commands (SLURM_CONF, …); takes it down after. Use from a module fixture."""
    settings = {"HPC_TF_CLUSTER_DIR": f"/var/tmp/hpc_tf-cluster-{name}", "HPC_TF_CLUSTER_PORT": port, **knobs}
    env = {**os.environ, **settings}
    up = subprocess.run([str(CLUSTER), "up"], capture_output=True, text=True, env=env)
    if up.returncode != 0:
        pytest.fail(f"the {name} cluster did not start:\n{up.stdout}\n{up.stderr}", pytrace=False)
    exported = _cluster_env(env)
    try:
        yield {**settings, **exported}
    finally:
        subprocess.run([str(CLUSTER), "down"], capture_output=True, env=env)


def use_cluster(monkeypatch: pytest.MonkeyPatch, cluster: dict[str, str]) -> dict[str, str]:
    """Point this test's commands (os.environ) at another cluster instance (`cluster_instance`'s variables)."""
    for key, value in cluster.items():
        monkeypatch.setenv(key, value)
    return cluster


@pytest.fixture
def slurm(slurm_cluster: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:
    """Per test: the cluster, and no job of this test left behind (only this test's: its work
    directory is under the test's tmp_path, so other users of the cluster are left alone). The cluster's variables
    are set again for each test: a module fixture's monkeypatch that was set up before the session's cluster (the
    fuzz and hostile workspaces) would otherwise undo them on its teardown, and a client without SLURM_CONF would
    fall back to /etc/slurm/slurm.conf, another cluster's."""
    os.environ.update(slurm_cluster)
    yield slurm_cluster
    proc = subprocess.run(["squeue", "-h", "-o", "%A %Z"], capture_output=True, text=True)
    leftover = [
        line.split()[0]
        for line in proc.stdout.splitlines()
        if len(line.split()) == 2 and line.split()[1].startswith(str(tmp_path))
    ]
    if leftover:
        subprocess.run(["scancel", *leftover], capture_output=True)


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


def make_project(root: Path, script: str, name: str = "train.py", **files: str) -> Path:
    """A source_directory holding an entry script (dedented) and any other files."""
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(textwrap.dedent(script))
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def write_config(path: Path, **keys: object) -> Path:
    """A YAML config written from keyword arguments (JSON is valid YAML)."""
    path.write_text(json.dumps(keys, indent=1))
    return path


def hpc(
    *args: str, cwd: Path | None = None, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m hpc_tf ARGS` as a user would, capturing its output."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = str(REPO) + (os.pathsep + full_env["PYTHONPATH"] if full_env.get("PYTHONPATH") else "")
    return subprocess.run(
        [sys.executable, "-m", "hpc_tf", *args],
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def read_status(run_dir: Path | str) -> dict:
    return json.loads((Path(run_dir) / "status.json").read_text())


def wait_for(predicate, timeout: float = 60, interval: float = 0.1):
    """Poll until predicate() is truthy; return its value or fail with the last one."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    assert value, f"condition not met within {timeout} s"
    return value


HOSTILE = [
    "with space",
    "it's",
    'say "hi"',
    "$(touch PWNED)",
    "`touch PWNED`",
    "semi;touch PWNED",
    "--leading-dashes",
    "-x",
    "naïve ünïcödé ✓",
    "back\\slash",
    "a#hash",
    "${HOME}",
    "&& touch PWNED",
    "| cat",
    "*",
    "",
]


# The longest files, longest first (seconds of one serial run in CI, `--durations`). scripts/test.sh runs the suite
# on several workers, one file per worker at a time (`--dist loadfile`), handed out in collection order: a long
# file handed out last would end the run alone, so these are collected first and the short ones fill in around them.
LONGEST_FIRST = (
    "test_requeue_jobs.py",  # 640: a 1-minute limit and ~3 minutes of Keras training, requeued until done
    "test_sweeps.py",  # 290
    "test_requeue_faults.py",  # 205
    "test_distributed.py",  # 185
    "test_hetjob_jobs.py",  # 170
    "test_requeue_distributed.py",  # 155
    "test_faults.py",  # 145
    "test_runs.py",  # 130
    "test_scheduler_outage.py",  # 80
)


def _longest_first(item: pytest.Item) -> int:
    name = item.path.name
    return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks follow what a test uses, so no file can forget one: a test on the dev cluster is `slurm`. The longest
    files go first (a stable sort: each file's own order is kept)."""
    for item in items:
        if "slurm_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slurm)
    items.sort(key=_longest_first)
