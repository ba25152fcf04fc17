"""Sweeps (issue 10) on the real Slurm dev cluster: trials as one job array, sampling, early termination,
throttle/cancel/max_duration, arrays split past MaxArraySize, bayesian sampling, distributed trials.

Every test submits with the project's own CLI (`python -m hpc_tf submit`) and asserts on the sweep's and
the trials' run directories and on what Slurm itself says (`squeue -r`, `scontrol show job`).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import hpc, make_project, wait_for, write_config

pytestmark = pytest.mark.slurm

# A synthetic trainer whose curves are known: val = q * (1 - exp(-k / 3)) at interval k.
TRAINER = """
import argparse, json, math, os, sys, time
import hpc_tf
p = argparse.ArgumentParser()
p.add_argument("--q", type=float, default=1.0)
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--batch-size", type=int, default=8)
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--sleep", type=float, default=0.0)
p.add_argument("--fixed", default="")
a = p.parse_args()
os.makedirs("outputs", exist_ok=True)
with open("outputs/argv.json", "w") as f:
    json.dump(sys.argv[1:], f)
for k in range(1, a.epochs + 1):
    time.sleep(a.sleep)
    hpc_tf.log("val", a.q * (1 - math.exp(-k / 3)), step=k)
with open("outputs/done", "w") as f:
    f.write("ok")
"""


def sweep_config(tmp_path: Path, name: str = "sweep.yaml", **hyperdrive: object) -> Path:
    project = make_project(tmp_path / "proj", TRAINER)
    return write_config(
        tmp_path / name,
        experiment="sw",
        source_directory=str(project),
        entry_script="train.py",
        script_params={"--epochs": 3, "--fixed": "kept", "--lr": 99},
        hyperdrive={"primary_metric_name": "val", "primary_metric_goal": "maximize", **hyperdrive},
    )


def submit(config: Path, runs: Path, *extra: str, env: dict[str, str] | None = None) -> dict:
    proc = hpc("submit", str(config), "--runs-dir", str(runs), "--json", *extra, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def sweep_cli(*args: str, runs: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return hpc("sweep", *args, "--runs-dir", str(runs), env=env)


def wait_sweep(sweep_id: str, runs: Path, timeout: float = 240, env: dict[str, str] | None = None) -> dict:
    proc = hpc("sweep", "wait", sweep_id, "--runs-dir", str(runs), "--json", timeout=timeout + 30, env=env)
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)


class RunningSampler:
    """Samples `squeue -r` every 0.2 s while a sweep runs: the most of its tasks RUNNING at once."""

    def __init__(self, job_ids: list[str], env: dict[str, str] | None = None) -> None:
        self.job_ids, self.most, self.samples = job_ids, 0, 0
        self.env = {**os.environ, **(env or {})}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            out = subprocess.run(
                ["squeue", "-h", "-r", "-t", "RUNNING", "-j", ",".join(self.job_ids), "-o", "%i"],
                capture_output=True,
                text=True,
                env=self.env,
            ).stdout
            self.most = max(self.most, len(out.split()))
            self.samples += 1
            time.sleep(0.2)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.most


def counting_sbatch(tmp_path: Path, fail_on_call: int | None = None) -> dict[str, str]:
    """A PATH wrapper around the real sbatch that counts its calls (and fails call N when asked)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    count = tmp_path / "sbatch-calls"
    fail = f'[ "$n" = "{fail_on_call}" ] && {{ echo "sbatch: error: injected failure" >&2; exit 1; }}'
    (bin_dir / "sbatch").write_text(
        f"#!/bin/bash\necho call >> {count}\nn=$(wc -l < {count})\n"
        + (fail if fail_on_call else "")
        + '\nexec /usr/bin/sbatch "$@"\n'
    )
    (bin_dir / "sbatch").chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HPC_TF_TEST_SBATCH_COUNT": str(count)}


def trial_argv(runs: Path, sweep_id: str, index: int) -> list[str]:
    return json.loads((runs / "sw" / f"{sweep_id}_{index}" / "outputs" / "argv.json").read_text())


# ---------------------------------------------------------------------------------------------------- arrays
def test_forty_random_trials_are_one_sbatch_never_more_than_three_running(slurm: dict, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    space = {"--lr": "loguniform(-6, -1)", "--batch-size": {"type": "choice", "values": [16, 32, 64]}}
    config = sweep_config(
        tmp_path,
        hyperparameter_sampling={"type": "random", "seed": 1234, "parameter_space": space},
        max_total_runs=40,
        max_concurrent_runs=3,
    )
    env = counting_sbatch(tmp_path)
    info = submit(config, runs, env=env)
    sampler = RunningSampler(info["array_job_ids"])
    scontrol = subprocess.run(
        ["scontrol", "show", "job", info["array_job_ids"][0]], capture_output=True, text=True
    ).stdout
    status = wait_sweep(info["sweep_id"], runs)
    most = sampler.stop()
    assert len(Path(env["HPC_TF_TEST_SBATCH_COUNT"]).read_text().split()) == 1  # exactly one sbatch
    assert "ArrayTaskId=0-39%3" in scontrol or "ArrayTaskThrottle=3" in scontrol, scontrol
    assert 1 <= most <= 3, f"{most} trials were RUNNING at once ({sampler.samples} samples)"
    assert status["state"] == "COMPLETED" and status["counts"] == {"COMPLETED": 40}
    trials = [json.loads(line) for line in (runs / "sw" / info["sweep_id"] / "trials.jsonl").read_text().splitlines()]
    for t in trials:
        argv = trial_argv(runs, info["sweep_id"], t["trial"])
        hp = t["hyperparameters"]
        # the sampled --lr replaces the fixed one in place; the fixed flags stay
        assert argv == [
            "--epochs",
            "3",
            "--fixed",
            "kept",
            "--lr",
            repr(hp["--lr"]),
            "--batch-size",
            str(hp["--batch-size"]),
        ]
        assert 2.4e-3 <= hp["--lr"] <= 0.368 and hp["--batch-size"] in (16, 32, 64)
        run_status = json.loads((runs / "sw" / f"{info['sweep_id']}_{t['trial']}" / "status.json").read_text())
        assert run_status["sweep"] == info["sweep_id"] and run_status["trial_index"] == t["trial"]
    # the same seed gives the same trials (a second sweep, cancelled at once)
    again = submit(config, runs)
    assert sweep_cli("cancel", again["sweep_id"], runs=runs).returncode == 0
    second = (runs / "sw" / again["sweep_id"] / "trials.jsonl").read_text()
    assert second == (runs / "sw" / info["sweep_id"] / "trials.jsonl").read_text()


def test_grid_three_by_two_runs_each_combination_once(slurm: dict, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    space = {"--q": "choice(0.2, 0.5, 1.0)", "--batch-size": {"type": "choice", "values": [16, 32]}}
    config = sweep_config(
        tmp_path, hyperparameter_sampling={"type": "grid", "parameter_space": space}, max_total_runs=100
    )
    info = submit(config, runs)
    assert info["trials"] == 6
    status = wait_sweep(info["sweep_id"], runs)
    assert status["counts"] == {"COMPLETED": 6}
    seen = {(t["hyperparameters"]["--q"], t["hyperparameters"]["--batch-size"]) for t in status["trials"]}
    assert seen == {(q, b) for q in (0.2, 0.5, 1.0) for b in (16, 32)}
    best = json.loads(sweep_cli("best", info["sweep_id"], "--json", runs=runs).stdout)
    assert best["hyperparameters"]["--q"] == 1.0 and best["index"] in (4, 5)  # ties: the lower number of q=1.0
    assert best["index"] == 4


# ---------------------------------------------------------------------------------------------------- policies
Q_VALUES = [1.0, 0.95, 0.5, 0.2]  # trial i gets Q_VALUES[i] (grid over one choice keeps the order)


@pytest.mark.parametrize(
    ("policy", "must_stop", "must_complete"),
    [
        ({"type": "bandit", "slack_factor": 0.1, "delay_evaluation": 2}, {2, 3}, {0, 1}),
        ({"type": "median_stopping", "delay_evaluation": 1}, {3}, {0}),
        ({"type": "truncation_selection", "truncation_percentage": 50, "delay_evaluation": 2}, {3}, {0}),
    ],
    ids=["bandit", "median_stopping", "truncation_selection"],
)
def test_policies_stop_the_trials_their_rule_says(
    slurm: dict, tmp_path: Path, policy: dict, must_stop: set[int], must_complete: set[int]
) -> None:
    runs = tmp_path / "runs"
    config = sweep_config(
        tmp_path,
        hyperparameter_sampling={"type": "grid", "parameter_space": {"--q": {"type": "choice", "values": Q_VALUES}}},
        max_total_runs=4,
        policy=policy,
    )
    info = submit(config, runs, "--set", "script_params.--epochs=14", "--set", "script_params.--sleep=0.5")
    status = wait_sweep(info["sweep_id"], runs)
    states = {t["index"]: t["state"] for t in status["trials"]}
    for i in must_stop:
        assert states[i] == "EARLY_TERMINATED", states
        stop = status["trials"][i]["early_stop"]
        assert stop["rule"] == policy["type"] and stop["interval"] >= policy.get("delay_evaluation", 0)
        assert stop["interval"] % policy.get("evaluation_interval", 1) == 0
        trial_dir = runs / "sw" / f"{info['sweep_id']}_{i}"
        assert (trial_dir / "outputs" / "done").exists() is False  # hpc_tf.log ended the script
    for i in must_complete:
        assert states[i] == "COMPLETED", states
        assert len(status["trials"][i]["history"]) == 14
    # every recorded decision (stop or go on) is recomputed from its recorded inputs, identically
    recheck = json.loads(sweep_cli("recheck", info["sweep_id"], "--json", runs=runs).stdout)
    assert recheck["decisions"] > 0 and recheck["differ"] == []


# ---------------------------------------------------------------------------------------------------- changing a sweep
def test_throttle_cancel_one_trial_then_cancel_the_sweep(slurm: dict, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    config = sweep_config(
        tmp_path,
        hyperparameter_sampling={"type": "random", "seed": 3, "parameter_space": {"--q": "uniform(0, 1)"}},
        max_total_runs=12,
        max_concurrent_runs=2,
    )
    info = submit(config, runs, "--set", "script_params.--epochs=40", "--set", "script_params.--sleep=0.5")
    array = info["array_job_ids"][0]
    assert sweep_cli("throttle", info["sweep_id"], "5", runs=runs).returncode == 0
    shown = subprocess.run(["scontrol", "show", "job", array], capture_output=True, text=True).stdout
    assert "ArrayTaskThrottle=5" in shown
    # cancel one trial, as a run: the others go on
    first = runs / "sw" / f"{info['sweep_id']}_0"
    wait_for(
        lambda: (first / "status.json").exists()
        and json.loads((first / "status.json").read_text())["state"] == "RUNNING",
        60,
    )
    assert hpc("cancel", str(first)).returncode == 0
    wait_for(lambda: json.loads(hpc("status", str(first), "--json").stdout)["state"] == "CANCELLED", 60)
    status = json.loads(sweep_cli("status", info["sweep_id"], "--json", runs=runs).stdout)
    others = [t["state"] for t in status["trials"] if t["index"] != 0]
    assert "CANCELLED" not in others and not status["final"]
    assert sweep_cli("cancel", info["sweep_id"], runs=runs).returncode == 0
    wait_for(
        lambda: not subprocess.run(["squeue", "-h", "-r", "-j", array], capture_output=True, text=True).stdout.strip(),
        60,
    )
    final = wait_sweep(info["sweep_id"], runs, timeout=60)
    assert final["state"] == "CANCELLED" and "cancelled by the user" in final["stopped"]
    assert set(final["counts"]) <= {"CANCELLED", "COMPLETED"}


def test_max_duration_minutes_ends_pending_and_running_trials(slurm: dict, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    config = sweep_config(
        tmp_path,
        hyperparameter_sampling={"type": "random", "seed": 5, "parameter_space": {"--q": "uniform(0, 1)"}},
        max_total_runs=6,
        max_concurrent_runs=2,
        max_duration_minutes=1,
    )
    started = time.monotonic()
    info = submit(config, runs, "--set", "script_params.--epochs=360", "--set", "script_params.--sleep=0.5")
    array = info["array_job_ids"][0]
    # nobody polls the sweep: the running trials end it themselves at the deadline
    wait_for(
        lambda: not subprocess.run(["squeue", "-h", "-r", "-j", array], capture_output=True, text=True).stdout.strip(),
        120,
        interval=1,
    )
    assert time.monotonic() - started < 100
    final = wait_sweep(info["sweep_id"], runs, timeout=60)
    assert final["state"] == "CANCELLED" and "max_duration_minutes (1)" in final["stopped"]
    assert final["counts"].get("CANCELLED", 0) == 6, final["counts"]


# ---------------------------------------------------------------------------------------------------- bayesian
def test_bayesian_sweep_beats_random_on_a_known_function(slurm: dict, tmp_path: Path) -> None:
    pytest.importorskip("optuna", reason="hpc_tf[bayesian] is in the test extra: optuna must be installed")
    from hpc_tf.sweeps.core.parse import parse_sweep
    from hpc_tf.sweeps.core.sampling import draw_trials

    runs = tmp_path / "runs"
    project = make_project(
        tmp_path / "quad",
        """
        import argparse, hpc_tf
        p = argparse.ArgumentParser()
        p.add_argument("--x", type=float)
        p.add_argument("--y", type=float)
        a = p.parse_args()
        hpc_tf.log("score", -((a.x - 0.3) ** 2) - (a.y - 2.0) ** 2)
        """,
    )
    block = {
        "hyperparameter_sampling": {
            "type": "bayesian",
            "seed": 11,
            "parameter_space": {"--x": "uniform(0, 1)", "--y": "quniform(0, 5, 0.5)"},
        },
        "primary_metric_name": "score",
        "primary_metric_goal": "maximize",
        "max_total_runs": 20,
        "max_concurrent_runs": 4,
    }
    config = write_config(
        tmp_path / "bayes.yaml",
        experiment="sw",
        source_directory=str(project),
        entry_script="train.py",
        hyperdrive=block,
    )
    info = submit(config, runs)
    status = wait_sweep(info["sweep_id"], runs, timeout=300)
    assert status["counts"] == {"COMPLETED": 20}
    import optuna

    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(runs / "sw" / info["sweep_id"] / "optuna.journal"))
    )
    study = optuna.load_study(study_name=info["sweep_id"], storage=storage)
    numbers = [t.number for t in study.trials]
    assert len(numbers) == 20 and len(set(numbers)) == 20
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    best = max(t["metric"] for t in status["trials"])
    # random sweeps with the same budget, from the same space (evaluated offline: the function is known)
    spec, problems = parse_sweep(
        {**block, "hyperparameter_sampling": {**block["hyperparameter_sampling"], "type": "random"}}, "hyperdrive", None
    )
    assert spec is not None, problems
    random_bests = sorted(
        max(-((t["--x"] - 0.3) ** 2) - (t["--y"] - 2.0) ** 2 for t in draw_trials(spec, seed)) for seed in range(9)
    )
    assert best > random_bests[4], (best, random_bests)


# ---------------------------------------------------------------------------------------------------- distributed trials
def test_multiworker_trials_on_two_nodes_inside_an_array(slurm: dict, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    project = make_project(
        tmp_path / "mw",
        """
        import json, os, hpc_tf
        cfg = json.loads(os.environ["TF_CONFIG"])
        os.makedirs("outputs", exist_ok=True)
        with open("outputs/tf_config.json", "w") as f:
            json.dump(cfg, f)
        if cfg["task"]["index"] == 0:
            hpc_tf.log("val", float(os.environ["HPC_TF_TRIAL_INDEX"]))
        """,
    )
    config = write_config(
        tmp_path / "mw.yaml",
        experiment="sw",
        source_directory=str(project),
        entry_script="train.py",
        distributed_backend="multiworker",
        node_count=2,
        hyperdrive={
            "hyperparameter_sampling": {"type": "grid", "parameter_space": {"--unused": "choice(1, 2, 3)"}},
            "primary_metric_name": "val",
            "primary_metric_goal": "maximize",
            "max_total_runs": 3,
        },
    )
    info = submit(config, runs)
    status = wait_sweep(info["sweep_id"], runs, timeout=300)
    assert status["counts"] == {"COMPLETED": 3}, status
    ports = {}
    for t in status["trials"]:
        trial = Path(t["run_dir"])
        tasks = [json.loads(p.read_text()) for p in sorted((trial / "tasks").glob("rank-*.json"))]
        assert len(tasks) == 2 and len({task["host"] for task in tasks}) == 2
        cfg = json.loads((trial / "outputs" / "tf_config.json").read_text())
        workers = cfg["cluster"]["worker"]
        assert [w.split(":")[0] for w in workers] == [task["host"] for task in tasks]  # only its own nodes
        ports[t["index"]] = {w for w in workers}
    assert len(set.union(*ports.values())) == 6  # trials sharing a node get different ports


# ---------------------------------------------------------------------------------------------------- MaxArraySize
@pytest.fixture(scope="module")
def small_array_cluster(slurm_cluster: dict) -> dict[str, str]:
    """A second dev cluster (2 nodes) whose MaxArraySize is 11: array indexes 0-10, so 25 trials need 3 arrays."""
    from tests.conftest import cluster_instance

    yield from cluster_instance("arrays", "18817", HPC_TF_CLUSTER_NODES="2", HPC_TF_CLUSTER_MAX_ARRAY_SIZE="11")


def test_sweeps_past_max_array_size_are_split_and_keep_the_throttle(small_array_cluster: dict, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    env = {**small_array_cluster, **counting_sbatch(tmp_path)}
    shown = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, env={**os.environ, **env})
    assert "MaxArraySize            = 11" in shown.stdout
    config = sweep_config(
        tmp_path,
        hyperparameter_sampling={"type": "random", "seed": 9, "parameter_space": {"--q": "uniform(0, 1)"}},
        max_total_runs=25,
        max_concurrent_runs=3,
    )
    info = submit(config, runs, env=env)
    assert len(info["array_job_ids"]) == 3
    record = json.loads((runs / "sw" / info["sweep_id"] / "sweep.json").read_text())
    assert [(c["offset"], c["count"]) for c in record["chunks"]] == [(0, 10), (10, 10), (20, 5)]
    assert record["max_array_size"] == 11
    sampler = RunningSampler(info["array_job_ids"], env)
    try:
        status = wait_sweep(info["sweep_id"], runs, env=env)
    finally:
        most = sampler.stop()
    assert status["counts"] == {"COMPLETED": 25}, status["counts"]
    assert sorted(
        json.loads((Path(t["run_dir"]) / "status.json").read_text())["trial_index"] for t in status["trials"]
    ) == list(range(25))
    assert 1 <= most <= 3, most
    # a failed sbatch for the second array: the error names the first, which is left queued (and cancellable)
    failing = {**small_array_cluster, **counting_sbatch(tmp_path / "f", fail_on_call=2)}
    proc = hpc("submit", str(config), "--runs-dir", str(runs), env=failing)
    assert proc.returncode != 0
    sweeps = sorted(p.parent for p in (runs / "sw").glob("*/sweep.json"))
    failed = json.loads((sweeps[-1] / "sweep.json").read_text())
    first_id = failed["chunks"][0]["job_id"]
    assert failed["state"] == "FAILED" and first_id and failed["chunks"][1]["job_id"] is None
    assert "array 2 of 3" in proc.stderr and first_id in proc.stderr, proc.stderr
    assert hpc("sweep", "cancel", sweeps[-1].name, "--runs-dir", str(runs), env=env).returncode == 0


# ---------------------------------------------------------------------------------------------------- the example
@pytest.mark.tf
def test_the_digits_sweep_example_stops_bad_trials_cleanly(slurm: dict, tmp_path: Path) -> None:
    """configs/digits-sweep.yaml as written (6 of its trials): real TensorFlow, the Keras callback's stop."""
    runs = tmp_path / "runs"
    config = Path(__file__).resolve().parent.parent / "configs" / "digits-sweep.yaml"
    info = submit(config, runs, "--set", "hyperdrive.max_total_runs=6", "--set", "hyperdrive.max_concurrent_runs=3")
    status = wait_sweep(info["sweep_id"], runs, timeout=400)
    assert status["state"] == "COMPLETED" and set(status["counts"]) <= {"COMPLETED", "EARLY_TERMINATED"}
    stopped = [t for t in status["trials"] if t["state"] == "EARLY_TERMINATED"]
    assert stopped, status["counts"]  # seed 1234 draws learning rates too high to keep up
    for t in status["trials"]:
        outputs = json.loads((Path(t["run_dir"]) / "outputs" / "metrics.json").read_text())
        assert outputs["batch_size"] == t["hyperparameters"]["--batch-size"]  # fit returned, the script went on
        assert len(t["history"]) == (8 if t["state"] == "COMPLETED" else t["early_stop"]["decided_at"])
    best = json.loads(sweep_cli("best", info["sweep_id"], "--json", runs=runs).stdout)
    assert best["state"] == "COMPLETED" and best["metric"] == max(t["metric"] for t in status["trials"])
    plots = json.loads(sweep_cli("plot", info["sweep_id"], "--json", runs=runs).stdout)
    for png in plots.values():
        assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # TensorBoard's HParams dashboard reads the sweep (each trial wrote its session when it ended), over
    # TensorBoard's own HTTP API, as `tensorboard --logdir <sweep dir>` serves it
    from tests.test_sweep_report import TensorBoard

    board = TensorBoard(Path(info["sweep_dir"]), "auto", tmp_path / "tensorboard.log")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                groups = {g["name"]: g for g in board.session_groups()["sessionGroups"]}
                if len(groups) == 6:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "tensorboard.log").read_text()
            time.sleep(0.5)
    finally:
        board.stop()
    for t in status["trials"]:
        group = groups[t["trial_id"]]
        assert group["hparams"]["--batch-size"] == t["hyperparameters"]["--batch-size"]
        assert group["hparams"]["--learning-rate"] == pytest.approx(t["hyperparameters"]["--learning-rate"])
        (session,) = group["sessions"]
        assert session["status"] == ("STATUS_SUCCESS" if t["state"] == "COMPLETED" else "STATUS_UNKNOWN")
        (value,) = session["metricValues"]
        assert value["value"] == pytest.approx(t["metric"], rel=1e-6) and value["trainingStep"] == len(t["history"])


def test_python_api_hyperdrive_config_submits_a_sweep_run(slurm: dict, tmp_path: Path) -> None:
    """HyperDrive's classes from Python: Experiment.submit(HyperDriveConfig) gives a SweepRun to follow."""
    from hpc_tf import Experiment, TensorFlow
    from hpc_tf.hyperdrive import GridParameterSampling, HyperDriveConfig, PrimaryMetricGoal, choice
    from hpc_tf.sweeps.run import SweepRun

    project = make_project(tmp_path / "proj", TRAINER)
    est = TensorFlow(source_directory=project, entry_script="train.py", script_params={"--epochs": 2})
    hd = HyperDriveConfig(
        estimator=est,
        hyperparameter_sampling=GridParameterSampling({"--q": choice(0.1, 0.9)}),
        primary_metric_name="val",
        primary_metric_goal=PrimaryMetricGoal.MINIMIZE,
        max_total_runs=10,
    )
    sweep = Experiment("api-sweep", runs_dir=tmp_path / "runs").submit(hd)
    assert isinstance(sweep, SweepRun)
    status = sweep.wait_for_completion(timeout=180)
    assert status.counts == {"COMPLETED": 2}
    best = sweep.get_best_run_by_primary_metric()
    assert best is not None and best.run_id.endswith("_0")  # minimize: q=0.1 is best
    assert [r.run_id for r in sweep.get_children()] == [f"{sweep.sweep_id}_0", f"{sweep.sweep_id}_1"]
    assert best.get_metrics("val")["val"][-1]["value"] == pytest.approx(0.1 * (1 - 2.718281828459045 ** (-2 / 3)))


def counting_wrappers(tmp_path: Path, names: tuple[str, ...] = ("squeue", "sacct", "scontrol")) -> dict[str, str]:
    """PATH wrappers that log each call of the real Slurm clients to one file."""
    bin_dir = tmp_path / "qbin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    log = tmp_path / "queries"
    for name in names:
        real = subprocess.run(["which", name], capture_output=True, text=True).stdout.strip()
        (bin_dir / name).write_text(f'#!/bin/bash\necho "{name} $*" >> {log}\nexec {real} "$@"\n')
        (bin_dir / name).chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HPC_TF_TEST_QUERY_LOG": str(log)}


def test_hostile_sampled_values_reach_the_script_as_given_and_status_is_one_query(slurm: dict, tmp_path: Path) -> None:
    from tests.conftest import HOSTILE

    runs = tmp_path / "runs"
    values = [v for v in HOSTILE if v and not v.startswith("-")][:8]  # argparse itself refuses `--fixed -x`
    config = sweep_config(
        tmp_path,
        hyperparameter_sampling={"type": "grid", "parameter_space": {"--fixed": {"type": "choice", "values": values}}},
        max_total_runs=len(values),
        max_concurrent_runs=4,
    )
    info = submit(config, runs)
    status = wait_sweep(info["sweep_id"], runs)
    assert status["counts"] == {"COMPLETED": len(values)}
    for t in status["trials"]:
        argv = trial_argv(runs, info["sweep_id"], t["index"])
        assert argv[argv.index("--fixed") + 1] == values[t["index"]]
    assert not list(tmp_path.rglob("PWNED")) and not (Path.cwd() / "PWNED").exists()
    # a running sweep's status: one scheduler query for all its trials
    running = submit(config, runs, "--set", "script_params.--epochs=20", "--set", "script_params.--sleep=0.5")
    wait_for(lambda: any((runs / "sw").glob(f"{running['sweep_id']}_*/status.json")), 60)
    # (the dev cluster has no accounting; said here, as a site would in HPC_TF_SLURM_ACCOUNTING, a process
    # does not first try sacct and learn it from Slurm's answer)
    env = {**counting_wrappers(tmp_path), "HPC_TF_SLURM_ACCOUNTING": "0"}
    proc = sweep_cli("status", running["sweep_id"], "--json", runs=runs, env=env)
    assert proc.returncode == 0, proc.stderr
    calls = Path(env["HPC_TF_TEST_QUERY_LOG"]).read_text().splitlines()
    assert len(calls) == 1 and calls[0].startswith("squeue -h -r"), calls
    assert sweep_cli("cancel", running["sweep_id"], runs=runs).returncode == 0


def test_sweep_status_with_the_controller_stopped_changes_no_trial(slurm: dict, tmp_path: Path) -> None:
    """The scheduler not answering is not "the trials are gone": states stay, the error is said, and the sweep
    completes once the controller is back (stopped for real with the dev cluster's own verb)."""
    from tests.test_scheduler_outage import BOUND_SECONDS, cluster

    runs = tmp_path / "runs"
    config = sweep_config(
        tmp_path,
        hyperparameter_sampling={"type": "random", "seed": 2, "parameter_space": {"--q": "uniform(0, 1)"}},
        max_total_runs=6,
        max_concurrent_runs=2,
    )
    info = submit(config, runs, "--set", "script_params.--epochs=30", "--set", "script_params.--sleep=0.5")
    first = runs / "sw" / f"{info['sweep_id']}_0" / "status.json"
    wait_for(lambda: first.exists() and json.loads(first.read_text())["state"] == "RUNNING", 120)
    cluster("stop-controller")
    try:
        start = time.monotonic()
        proc = sweep_cli("status", info["sweep_id"], "--json", runs=runs)
        assert time.monotonic() - start < BOUND_SECONDS and proc.returncode == 0, proc.stderr
        status = json.loads(proc.stdout)
        assert status["scheduler_error"] and not status["final"] and not status["stopped"]
        states = {t["index"]: t["state"] for t in status["trials"]}
        assert states[0] == "RUNNING" and "CANCELLED" not in states.values() and "UNKNOWN" not in states.values()
        assert "did not answer" in sweep_cli("status", info["sweep_id"], runs=runs).stdout
    finally:
        cluster("start-controller")
    final = wait_sweep(info["sweep_id"], runs, timeout=240)
    assert final["counts"] == {"COMPLETED": 6}, final["counts"]


SCRAPED_TRAINER = """
import argparse, math, time
p = argparse.ArgumentParser()
p.add_argument("--q", type=float)
p.add_argument("--epochs", type=int, default=14)
a = p.parse_args()
for k in range(1, a.epochs + 1):
    time.sleep(0.5)
    print(f"epoch {k} val={a.q * (1 - math.exp(-k / 3)):.6f}", flush=True)
print("done", flush=True)
"""


def test_a_policy_on_a_scraped_metric_is_applied_by_the_runtime(slurm: dict, tmp_path: Path) -> None:
    """A script that only prints: metric_patterns gives the primary metric, the runtime applies the policy and
    stops the script itself; the trial still ends EARLY_TERMINATED (exit 0), not FAILED."""
    runs = tmp_path / "runs"
    project = make_project(tmp_path / "printer", SCRAPED_TRAINER)
    config = write_config(
        tmp_path / "scraped.yaml",
        experiment="sw",
        source_directory=str(project),
        entry_script="train.py",
        metric_patterns={"val": r"val=([0-9.]+)"},
        hyperdrive={
            "hyperparameter_sampling": {
                "type": "grid",
                "parameter_space": {"--q": {"type": "choice", "values": Q_VALUES}},
            },
            "primary_metric_name": "val",
            "primary_metric_goal": "maximize",
            "max_total_runs": 4,
            "policy": {"type": "bandit", "slack_amount": 0.2, "delay_evaluation": 2},
        },
    )
    info = submit(config, runs)
    status = wait_sweep(info["sweep_id"], runs)
    states = {t["index"]: t["state"] for t in status["trials"]}
    assert states[0] == states[1] == "COMPLETED" and states[2] == states[3] == "EARLY_TERMINATED", states
    for i in (2, 3):
        trial = Path(status["trials"][i]["run_dir"])
        assert "done" not in (trial / "logs" / "rank-0.out").read_text()  # stopped by the runtime
        assert json.loads((trial / "status.json").read_text())["exit_code"] == 0
    assert json.loads(sweep_cli("recheck", info["sweep_id"], "--json", runs=runs).stdout)["differ"] == []


def test_policies_work_with_bayesian_sampling(slurm: dict, tmp_path: Path) -> None:
    """Azure refuses a policy with Bayesian sampling; here a stopped trial is PRUNED in Optuna."""
    pytest.importorskip("optuna", reason="hpc_tf[bayesian] is in the test extra: optuna must be installed")
    import optuna

    runs = tmp_path / "runs"
    config = sweep_config(
        tmp_path,
        hyperparameter_sampling={"type": "bayesian", "seed": 4, "parameter_space": {"--q": "choice(0.05, 1.0)"}},
        max_total_runs=6,
        max_concurrent_runs=6,
        policy={"type": "bandit", "slack_factor": 0.2, "delay_evaluation": 2},
    )
    info = submit(config, runs, "--set", "script_params.--epochs=10", "--set", "script_params.--sleep=0.5")
    status = wait_sweep(info["sweep_id"], runs, timeout=300)
    by_q = {t["index"]: (t["hyperparameters"]["--q"], t["state"]) for t in status["trials"]}
    assert all(state == ("COMPLETED" if q == 1.0 else "EARLY_TERMINATED") for q, state in by_q.values()), by_q
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(Path(info["sweep_dir"]) / "optuna.journal"))
    )
    trials = optuna.load_study(study_name=info["sweep_id"], storage=storage).trials
    expected = {"COMPLETED": optuna.trial.TrialState.COMPLETE, "EARLY_TERMINATED": optuna.trial.TrialState.PRUNED}
    assert sorted(t.state for t in trials) == sorted(expected[s] for _, s in by_q.values())
