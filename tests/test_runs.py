"""Following runs: listing, status, logs, wait, metrics and plots, per-rank outputs, batched scheduler queries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from hpc_tf import Experiment, TensorFlow
from hpc_tf.runs.follow import Run, Watcher

from .conftest import REPO, cluster_instance, hpc, make_project, read_status, use_cluster, wait_for, write_config

KERAS_METRICS = """\
    import numpy as np
    import tensorflow as tf
    import hpc_tf
    from hpc_tf.keras import MetricsLogger

    x = np.random.default_rng(0).random((64, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[MetricsLogger()])
    hpc_tf.log("note", "done")
    print("loss printed 0.25")
"""

PER_RANK = """\
    import os, time
    rank = int(os.environ["HPC_TF_RANK"])
    if rank == int(os.environ.get("FAIL_RANK", "-1")):
        raise SystemExit(3)
    for i in range(3):
        print(f"line {i} from rank {rank}", flush=True)
        time.sleep(0.2)
    os.makedirs("outputs", exist_ok=True)
    open("outputs/result.txt", "w").write(f"rank {rank}")
"""


def submit(config: Path, runs: Path, *extra: str) -> Path:
    proc = hpc("submit", str(config), "--backend", "slurm", "--json", "--runs-dir", str(runs), *extra)
    assert proc.returncode == 0, proc.stderr
    return Path(json.loads(proc.stdout.splitlines()[-1])["run_dir"])


def test_metrics_from_many_processes_never_mix_lines(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "logs").mkdir(parents=True)
    (run_dir / "status.json").write_text("{}")
    (run_dir / "job.json").write_text("{}")
    code = (
        "import hpc_tf, threading\n"
        "def go(t):\n    [hpc_tf.log(f'm{t}', i * 0.5, step=i) for i in range(200)]\n"
        "ts = [threading.Thread(target=go, args=(t,)) for t in range(3)]\n[t.start() for t in ts]\n[t.join() for t in ts]\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env={**os.environ, "HPC_TF_RUN_DIR": str(run_dir), "HPC_TF_RANK": str(rank), "PYTHONPATH": str(REPO)},
        )
        for rank in range(4)
    ]
    assert all(p.wait() == 0 for p in procs)
    metrics = Run(run_dir).get_metrics()
    assert sorted(metrics) == ["m0", "m1", "m2"]
    assert all(len(points) == 800 for points in metrics.values())
    assert {p["rank"] for p in metrics["m1"]} == {0, 1, 2, 3}


def test_log_outside_a_run_warns_and_records_nothing(tmp_path: Path) -> None:
    code = (
        "import warnings, hpc_tf\nwith warnings.catch_warnings(record=True) as w:\n    warnings.simplefilter('always')\n"
        "    hpc_tf.log('x', 1)\nprint(len(w), w[0].message if w else '')"
    )
    env = {k: v for k, v in os.environ.items() if k != "HPC_TF_RUN_DIR"}
    out = subprocess.run(
        [sys.executable, "-c", code], env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, cwd=tmp_path
    )
    assert out.stdout.startswith("1 hpc_tf.log: not inside an hpc_tf run") and not list(tmp_path.iterdir())


@pytest.mark.slurm
def test_keras_metrics_come_back_from_metrics_json_and_plot(slurm: dict, tmp_path: Path) -> None:
    src = make_project(tmp_path / "src", KERAS_METRICS)
    cfg = write_config(
        tmp_path / "m.yaml",
        experiment="metrics",
        source_directory=str(src),
        entry_script="train.py",
        metric_patterns={"printed_loss": r"loss printed ([0-9.]+)"},
    )
    run_dir = submit(cfg, tmp_path / "runs", "--wait")
    metrics = json.loads(hpc("metrics", str(run_dir), "--json").stdout)
    assert [p["step"] for p in metrics["loss"]] == [0, 1, 2] and [p["step"] for p in metrics["mae"]] == [0, 1, 2]
    assert all(isinstance(p["value"], float) for p in metrics["loss"])
    assert metrics["note"][0]["value"] == "done" and metrics["printed_loss"][0]["value"] == 0.25
    plot = tmp_path / "metrics.png"
    proc = hpc("metrics", run_dir.name, "--runs-dir", str(tmp_path / "runs"), "--plot", str(plot))
    assert proc.returncode == 0, proc.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000


@pytest.mark.slurm
def test_every_rank_logs_followed_prefixed_and_outputs_gathered(slurm: dict, tmp_path: Path) -> None:
    src = make_project(tmp_path / "src", PER_RANK)
    cfg = write_config(
        tmp_path / "r.yaml",
        experiment="ranks",
        source_directory=str(src),
        entry_script="train.py",
        distributed_backend="multiworker",
        node_count=2,
        process_count_per_node=2,
    )
    run_dir = submit(cfg, tmp_path / "runs")
    followed = hpc("logs", str(run_dir), "--all", "--follow", timeout=120)
    assert followed.returncode == 0, followed.stderr
    for rank in range(4):
        assert [line for line in followed.stdout.splitlines() if line.startswith(f"[rank {rank}] ")] == [
            f"[rank {rank}] line {i} from rank {rank}" for i in range(3)
        ]
    assert read_status(run_dir)["state"] == "COMPLETED"
    assert (run_dir / "outputs" / "result.txt").read_text() == "rank 0"
    for rank in (1, 2, 3):
        assert (run_dir / "outputs" / f"rank-{rank}" / "result.txt").read_text() == f"rank {rank}"
    run = Run.get(run_dir.name, tmp_path / "runs")
    assert run.get_file_names() == ["rank-1/result.txt", "rank-2/result.txt", "rank-3/result.txt", "result.txt"]
    assert run.download_file("rank-2/result.txt", tmp_path / "copy.txt").read_text() == "rank 2"


@pytest.mark.slurm
def test_a_failing_rank_in_a_two_node_job_is_named(slurm: dict, tmp_path: Path) -> None:
    src = make_project(tmp_path / "src", PER_RANK)
    cfg = write_config(
        tmp_path / "f.yaml",
        experiment="failrank",
        source_directory=str(src),
        entry_script="train.py",
        distributed_backend="multiworker",
        node_count=2,
        environment_variables={"FAIL_RANK": 1},
    )
    run_dir = submit(cfg, tmp_path / "runs")
    waited = hpc("wait", str(run_dir), "--json", timeout=120)
    assert waited.returncode != 0
    assert json.loads(waited.stdout.splitlines()[-1])["state"] == "FAILED"
    status = json.loads(hpc("status", str(run_dir), "--json").stdout)
    assert {k: status["first_failure"][k] for k in ("rank", "role", "index", "host", "exit_code")} == {
        "rank": 1,
        "role": "worker",
        "index": 1,
        "host": "n2",
        "exit_code": 3,
    }
    assert [t["exit_code"] for t in status["tasks"]][1] == 3 and status["elapsed_seconds"] is not None
    assert "first failure rank 1 (worker 1) on n2: exit 3" in hpc("status", str(run_dir)).stdout


@pytest.mark.slurm
def test_a_job_over_its_time_limit_ends_timeout(slurm: dict, tmp_path: Path) -> None:
    src = make_project(tmp_path / "src", "import time\nprint('sleeping', flush=True)\ntime.sleep(600)\n")
    cfg = write_config(
        tmp_path / "t.yaml",
        experiment="timeout",
        source_directory=str(src),
        entry_script="train.py",
        max_run_duration_seconds=60,
    )
    run_dir = submit(cfg, tmp_path / "runs")
    start = time.monotonic()
    waited = hpc("wait", str(run_dir), timeout=240)
    assert waited.returncode != 0 and "ended TIMEOUT" in waited.stderr
    assert 55 < time.monotonic() - start < 200
    assert read_status(run_dir)["state"] == "TIMEOUT"


def test_runs_listing_filters_and_prefixes(tmp_path: Path) -> None:
    src = make_project(tmp_path / "src", "import sys\nsys.exit(int(sys.argv[-1]))\n")
    runs = tmp_path / "runs"
    made = []
    for code in (0, 1, 0):
        cfg = write_config(
            tmp_path / "c.yaml",
            experiment="list",
            source_directory=str(src),
            entry_script="train.py",
            script_params={"--code": code},
        )
        made.append(
            Path(
                json.loads(
                    hpc(
                        "submit", str(cfg), "--backend", "local", "--json", "--wait", "--runs-dir", str(runs)
                    ).stdout.splitlines()[-1]
                )["run_dir"]
            )
        )
    listed = json.loads(hpc("runs", "--runs-dir", str(runs), "--json").stdout)
    assert [r["run_dir"] for r in listed] == [str(p) for p in reversed(made)]  # newest first
    failed = json.loads(hpc("runs", "--runs-dir", str(runs), "--state", "failed", "--json").stdout)
    assert [r["run_dir"] for r in failed] == [str(made[1])]
    assert "list" in hpc("runs", "--runs-dir", str(runs)).stdout
    prefix = made[1].name[:-2]
    found = hpc("status", prefix, "--runs-dir", str(runs), "--json")
    assert found.returncode == 0 and json.loads(found.stdout)["state"] == "FAILED"
    ambiguous = hpc("status", made[0].name[:9], "--runs-dir", str(runs))
    assert ambiguous.returncode == 2 and "ambiguous" in ambiguous.stderr


def _counting_path(tmp_path: Path) -> tuple[str, Path]:
    """A PATH that logs every real sacct/squeue call before running the real one (calls are counted, not faked)."""
    bin_dir, log = tmp_path / "counting-bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for tool in ("sacct", "squeue"):
        real = subprocess.run(["which", tool], capture_output=True, text=True, check=True).stdout.strip()
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\nexec "{real}" "$@"\n')
        (bin_dir / tool).chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}", log


def _watch_fifty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Watcher, list[str]]:
    src = make_project(tmp_path / "src", "print('hi')\n")
    est = TensorFlow(source_directory=str(src), entry_script="train.py", compute_target={"partition": "debug"})
    exp = Experiment("fifty", runs_dir=tmp_path / "runs")
    runs = [exp.submit(est, backend="slurm") for _ in range(50)]
    path, log = _counting_path(tmp_path)
    monkeypatch.setenv("PATH", path)
    watcher = Watcher(first_interval=0.5, max_interval=2.0)
    statuses = watcher.follow(runs, timeout=180)
    assert [s.state for s in statuses] == ["COMPLETED"] * 50
    calls_while_watching = log.read_text().splitlines()
    watcher.next_query = 0
    watcher.poll(runs)  # every run is final: no query at all
    assert log.read_text().splitlines() == calls_while_watching
    return watcher, calls_while_watching


@pytest.mark.slurm
def test_watching_fifty_runs_is_one_query_per_interval_without_accounting(
    slurm: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watcher, calls = _watch_fifty(tmp_path, monkeypatch)
    sacct = [c for c in calls if c.startswith("sacct")]
    squeue = [c for c in calls if c.startswith("squeue")]
    assert len(sacct) == 1  # the one-time probe: "accounting storage is disabled"
    assert len(squeue) == watcher.queries and watcher.queries >= 2
    assert len(squeue[0].split("-j ")[1].split()[0].split(",")) == 50  # one query carries all 50 jobs


@pytest.fixture(scope="module")
def accounting_instance() -> Iterator[dict[str, str]]:
    """A dev cluster of its own with real accounting (slurmdbd + MariaDB), so the shared one is never restarted."""
    yield from cluster_instance("accounting", "17817", HPC_TF_CLUSTER_ACCOUNTING="1")


@pytest.fixture
def accounting_cluster(accounting_instance: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    return use_cluster(monkeypatch, accounting_instance)


@pytest.mark.slurm
def test_watching_fifty_runs_is_one_query_per_interval_with_accounting(
    accounting_cluster: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watcher, calls = _watch_fifty(tmp_path, monkeypatch)
    assert not [c for c in calls if c.startswith("squeue")]
    assert len(calls) == watcher.queries and watcher.queries >= 2
    wait_for(
        lambda: "COMPLETED"
        in subprocess.run(["sacct", "-X", "-n", "-P", "-o", "State"], capture_output=True, text=True).stdout,
        timeout=30,
    )
