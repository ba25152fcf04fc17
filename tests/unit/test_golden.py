"""Golden job scripts: every example config, rendered for each backend, must match tests/golden/ byte for byte.

A job script is what users submit and read: any change to it (a directive, a quote, the launch line)
should be a visible diff in review, not a side effect. After an intended change, update the files and
review the diff:

    pytest tests/unit/test_golden.py --update-golden
    HPC_TF_UPDATE_GOLDEN=1 pytest tests          # where tests/unit/conftest.py is not loaded at start-up
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest

from hpc_tf.config.loading import load_config
from hpc_tf.config.targets import resolve_target
from hpc_tf.core.plan import JOB_MODULE, ScriptPlan, local_plan, slurm_plan
from hpc_tf.runs.render import render_script
from hpc_tf.sweeps.core.arrays import array_plan, plan_chunks

REPO = Path(__file__).resolve().parent.parent.parent
GOLDEN = REPO / "tests" / "golden"
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
BACKENDS = ("slurm", "local")
# Fixed inputs, so that the scripts depend on the configs and the code only (not on who renders where).
PYTHON = "/usr/bin/python3"
PACKAGE_ROOT = ""
AS_ROOT = False

# A sweep config (a hyperdrive: block) renders its first job array for Slurm; sweeps have no local script.
SWEEPS = {config for config in CONFIGS if load_config(config)[1] is not None}
# A config with roles: is a Slurm heterogeneous job; the local backend refuses it (no local script either).
HETJOBS = {config for config in CONFIGS if load_config(config)[0].roles}
SLURM_ONLY = SWEEPS | HETJOBS
CASES = [
    (config, backend) for config in CONFIGS for backend in BACKENDS if backend == "slurm" or config not in SLURM_ONLY
]
IDS = [f"{config.stem}.{backend}" for config, backend in CASES]


def plan_for(config: Path, backend: str) -> ScriptPlan:
    spec, sweep, _ = load_config(config)
    if sweep is not None:
        chunk = plan_chunks(sweep.trial_count, None)[0]
        options = resolve_target(spec, ()).options
        return array_plan(spec, options, PYTHON, PACKAGE_ROOT, chunk, sweep.max_concurrent_runs, None, AS_ROOT)
    if backend == "slurm":
        return slurm_plan(spec, resolve_target(spec, ()).options, PYTHON, PACKAGE_ROOT, AS_ROOT)
    return local_plan(spec, PYTHON, PACKAGE_ROOT, AS_ROOT)


def rendered(config: Path, backend: str) -> str:
    return render_script(plan_for(config, backend), site_dir=None, cache_dir=None)


def golden_path(config: Path, backend: str) -> Path:
    return GOLDEN / f"{config.stem}.{backend}.sh"


@pytest.mark.parametrize(("config", "backend"), CASES, ids=IDS)
def test_script_matches_golden(config: Path, backend: str, update_golden: bool) -> None:
    text = rendered(config, backend)
    path = golden_path(config, backend)
    if update_golden:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path.name} is missing: run `pytest tests/unit/test_golden.py --update-golden`"
    expected = path.read_text(encoding="utf-8")
    diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True), str(path), "rendered"))
    assert text == expected, f"the {backend} script of {config.name} changed (update with --update-golden):\n{diff}"


# A site with SchedulerParameters=disable_hetjob_steps: the heterogeneous example with one step per component.
PER_COMPONENT = GOLDEN / "parameter-server-hetjob.per-component.slurm.sh"


def test_per_component_script_matches_golden(update_golden: bool) -> None:
    config = REPO / "configs" / "parameter-server-hetjob.yaml"
    spec = load_config(config)[0]
    plan = slurm_plan(spec, resolve_target(spec, ()).options, PYTHON, PACKAGE_ROOT, AS_ROOT, "per_component")
    text = render_script(plan, site_dir=None, cache_dir=None)
    if update_golden:
        PER_COMPONENT.write_text(text, encoding="utf-8")
    expected = PER_COMPONENT.read_text(encoding="utf-8")
    diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True), PER_COMPONENT.name, "now"))
    assert text == expected, f"the per-component script changed (update with --update-golden):\n{diff}"
    assert text.replace(f"exec {PYTHON} -u -m hpc_tf.job.hetsteps srun", "exec srun") != text


def test_no_stale_golden_files() -> None:
    """A golden file whose config was removed or renamed would never be checked again."""
    expected = {golden_path(config, backend).name for config, backend in CASES} | {PER_COMPONENT.name}
    present = {p.name for p in GOLDEN.glob("*.sh")} if GOLDEN.is_dir() else set()
    assert present - expected == set(), "golden files without a config: delete them"


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_slurm_golden_shape(config: Path) -> None:
    """What every Slurm script must be, whatever the config: a bash script, an #SBATCH header, then the
    launcher exec'd (signals reach it) with hpc_tf's in-job entry run in the run directory."""
    text = golden_path(config, "slurm").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    header = [line for line in lines if line.startswith("#SBATCH ")]
    batch_log = "logs/slurm-%A_%a.out" if config in SWEEPS else "logs/slurm-%j.out"  # an array: one per task
    assert header and f"#SBATCH --output={batch_log}" in header
    assert lines.index(header[-1]) < min(i for i, line in enumerate(lines) if not line.startswith("#"))
    execs = [line for line in lines if line.startswith("exec ")]
    assert len(execs) == 1 and lines[-1] == execs[0]
    tail = r" --trial-offset 0" if config in SWEEPS else ""  # array task i runs trial 0 + i
    assert re.fullmatch(rf"exec (srun|mpirun) .* {re.escape(PYTHON)} -u -m {re.escape(JOB_MODULE)} \.{tail}", execs[0])


@pytest.mark.parametrize(
    "config", [c for c in CONFIGS if c not in SLURM_ONLY], ids=[c.stem for c in CONFIGS if c not in SLURM_ONLY]
)
def test_local_golden_shape(config: Path) -> None:
    text = golden_path(config, "local").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    assert not any(line.startswith("#SBATCH") for line in lines)
    assert lines[-1].startswith(f"exec {PYTHON} -u -m ") or lines[-1].startswith("exec mpirun ")
