"""Issue 19, environment size, for real: a sweep whose trials' hyperparameters are 20 values of 11 KB. As one
environment string (HPC_TF_HPARAMS, ~220 KB) no program could be started with them (Linux's MAX_ARG_STRLEN is
128 KiB: every trial failed with exit 127); they now reach each trial through tasks/hparams.json
(HPC_TF_HPARAMS_FILE), and the entry script's interpreter finds os.environ["HPC_TF_HPARAMS"] as usual, without
the long string in its C environment (so a program it starts still starts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import hpc, make_project, read_status, write_config

pytestmark = pytest.mark.slurm

ENTRY = """
import argparse, json, os, subprocess
import hpc_tf

parser = argparse.ArgumentParser()
for i in range(20):
    parser.add_argument(f"--p{i}")
parser.add_argument("--mode")
args = parser.parse_args()
params = json.loads(os.environ["HPC_TF_HPARAMS"])
seen = {
    "same_as_argv": all(params[f"--p{i}"] == getattr(args, f"p{i}") for i in range(20)),
    "mode": params["--mode"],
    "file": os.environ.get("HPC_TF_HPARAMS_FILE"),
    "in_c_environment": b"HPC_TF_HPARAMS=" in open("/proc/self/environ", "rb").read(),
    "child": subprocess.run(["/bin/sh", "-c", "echo started"], capture_output=True, text=True).stdout.strip(),
}
os.makedirs("outputs", exist_ok=True)
with open("outputs/seen.json", "w") as f:
    json.dump(seen, f)
hpc_tf.log("m", 1.0)
"""


def test_hyperparameters_too_long_for_the_environment_reach_every_trial(slurm: dict, tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", ENTRY)
    space = {f"--p{i}": {"type": "choice", "values": [f"{i}" + "x" * 11_000]} for i in range(20)}
    space["--mode"] = "choice('a', 'b')"
    config = write_config(tmp_path / "sweep.yaml", experiment="bighp", source_directory=str(project),
                          entry_script="train.py", max_run_duration_seconds=300,
                          hyperdrive={"hyperparameter_sampling": {"type": "grid", "parameter_space": space},
                                      "primary_metric_name": "m", "primary_metric_goal": "maximize",
                                      "max_total_runs": 2})  # fmt: skip
    runs = tmp_path / "runs"
    proc = hpc("submit", str(config), "--runs-dir", str(runs), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    proc = hpc("sweep", "wait", info["sweep_id"], "--runs-dir", str(runs), "--json", timeout=300)
    assert json.loads(proc.stdout)["counts"] == {"COMPLETED": 2}, (proc.stdout, proc.stderr)
    for index, mode in enumerate(["a", "b"]):
        trial = runs / "bighp" / f"{info['sweep_id']}_{index}"
        assert (read_status(trial)["state"], read_status(trial)["exit_code"]) == ("COMPLETED", 0)
        seen = json.loads((trial / "outputs" / "seen.json").read_text())
        assert seen == {"same_as_argv": True, "mode": mode, "file": str(trial / "tasks" / "hparams.json"),
                        "in_c_environment": False, "child": "started"}  # fmt: skip
        assert json.loads((trial / "tasks" / "hparams.json").read_text())["--mode"] == mode
