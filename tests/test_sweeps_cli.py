"""Sweep configs through the CLI without a cluster: validation naming keys (exit 2), render, refusals, hints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpc_tf.config.loading import validate
from hpc_tf.sweeps.core.parse import parse_sweep
from hpc_tf.sweeps.submit import metric_warning
from tests.conftest import hpc, make_project, write_config

BLOCK = {
    "hyperparameter_sampling": {
        "type": "random",
        "seed": 1,
        "parameter_space": {"--lr": "loguniform(-6, -1)", "--bs": {"type": "choice", "values": [16, 32]}},
    },
    "primary_metric_name": "val",
    "primary_metric_goal": "maximize",
    "max_total_runs": 40,
    "max_concurrent_runs": 3,
}
SCRIPT = "import hpc_tf\nhpc_tf.log('val', 1.0)\n"


def config(tmp_path: Path, **keys: object) -> Path:
    project = make_project(tmp_path / "proj", SCRIPT)
    base = {"experiment": "sw", "source_directory": str(project), "entry_script": "train.py", "hyperdrive": BLOCK}
    return write_config(tmp_path / "sweep.yaml", **{**base, **keys})


def test_validate_and_render_a_sweep(tmp_path: Path) -> None:
    path = config(tmp_path)
    proc = hpc("validate", str(path))
    assert proc.returncode == 0 and "a random sweep of 40 trials on 'val'" in proc.stdout, proc.stderr
    script = hpc("render", str(path), "--backend", "slurm").stdout
    assert "#SBATCH --array=0-39%3" in script and "#SBATCH --output=logs/slurm-%A_%a.out" in script
    assert script.rstrip().endswith("-m hpc_tf.job . --trial-offset 0")


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (
            {"hyperparameter_sampling": {"type": "grid", "parameter_space": {"--lr": "uniform(0, 1)"}}},
            "hyperdrive.hyperparameter_sampling.parameter_space.--lr",
            "choice",
        ),
        (
            {"hyperparameter_sampling": {"type": "bayesian", "parameter_space": {"--lr": "normal(0, 1)"}}},
            "hyperdrive.hyperparameter_sampling.parameter_space.--lr",
            "bayesian",
        ),
        ({"policy": {"type": "bandit"}}, "hyperdrive.policy", "slack"),
        ({"policy": {"type": "bandit", "slack_factor": 0.1, "slack_amount": 0.2}}, "hyperdrive.policy", "slack"),
        ({"primary_metric_goal": "biggest"}, "hyperdrive.primary_metric_goal", "maximize"),
        ({"max_total_runs": 0}, "hyperdrive.max_total_runs", ""),
        (
            {"hyperparameter_sampling": {"type": "random", "parameter_space": {"--lr": "__import__('os')"}}},
            "hyperdrive.hyperparameter_sampling.parameter_space.--lr",
            "",
        ),
    ],
)
def test_bad_sweeps_name_the_key_and_exit_2(tmp_path: Path, change: dict, key: str, words: str) -> None:
    proc = hpc("validate", str(config(tmp_path, hyperdrive={**BLOCK, **change})))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert key in proc.stderr and words in proc.stderr, proc.stderr


def test_both_block_names_at_once_is_an_error(tmp_path: Path) -> None:
    proc = hpc("validate", str(config(tmp_path, sweep=BLOCK)))
    assert proc.returncode == 2 and "hyperdrive + sweep" in proc.stderr, proc.stderr


def test_the_alias_and_v2_names(tmp_path: Path) -> None:
    v2 = {
        "sampling_algorithm": {"type": "random", "seed": 3},
        "search_space": {"lr": {"type": "loguniform", "min_value": -6, "max_value": -1}},
        "objective": {"primary_metric": "val", "goal": "minimize"},
        "limits": {"max_total_trials": 5, "max_concurrent_trials": 2, "timeout": 600},
        "early_termination": {"type": "median_stopping", "delay_evaluation": 2},
    }
    path = config(tmp_path, hyperdrive=None)
    data = json.loads(path.read_text())
    del data["hyperdrive"]
    data["sweep"] = v2
    path.write_text(json.dumps(data))
    assert hpc("validate", str(path)).returncode == 0
    spec, problems = parse_sweep(v2, "sweep", None)
    assert spec is not None and not problems
    assert list(spec.parameter_space) == ["--lr"] and spec.max_duration_minutes == 10
    assert spec.policy is not None and spec.policy.type == "median_stopping"


def test_sweeps_on_the_local_backend_are_refused_with_the_reason(tmp_path: Path) -> None:
    proc = hpc("submit", str(config(tmp_path)), "--backend", "local", "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 2 and "Slurm job array" in proc.stderr and "local" in proc.stderr, proc.stderr
    assert not (tmp_path / "runs").exists()


def test_a_sweep_id_given_to_a_run_command_says_how_to_follow_it(tmp_path: Path) -> None:
    sweep = tmp_path / "runs" / "sw" / "20261128-120000-000abc"
    sweep.mkdir(parents=True)
    (sweep / "sweep.json").write_text("{}")
    proc = hpc("status", "20261128-120000", "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 2 and "is a sweep" in proc.stderr and "sweep status" in proc.stderr


@pytest.mark.parametrize(
    ("script", "patterns", "warns"),
    [
        ("import hpc_tf\nhpc_tf.log('val', 1)\n", {}, False),
        ('import hpc_tf\nhpc_tf.log("val", 1)\n', {}, False),
        ("from hpc_tf.keras import MetricsLogger\n", {}, False),  # Keras's own names: not in the source
        ("print('val=1')\n", {"val": "val=([0-9.]+)"}, False),
        ("import hpc_tf\nhpc_tf.log('loss', 1)\n", {}, True),
    ],
)
def test_a_primary_metric_nothing_logs_is_warned_about(
    tmp_path: Path, script: str, patterns: dict, warns: bool
) -> None:
    project = make_project(tmp_path / "p", script)
    spec = validate(
        {"source_directory": str(project), "entry_script": "train.py", "metric_patterns": patterns}, tmp_path
    )
    sweep, _ = parse_sweep(BLOCK, "hyperdrive", None)
    assert sweep is not None
    assert bool(metric_warning(spec, sweep)) is warns
