"""Rendering: every value reaches the script quoted, scripts pass `bash -n`, sbatch reads directives back exactly."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from hpc_tf.config.loading import load_spec, validate
from hpc_tf.config.targets import Target, resolve_target
from hpc_tf.core.plan import local_plan, slurm_plan
from hpc_tf.core.spec import SlurmOptions
from hpc_tf.runs.render import builtin_template_dir, render_script, sbatch_quote
from hpc_tf.settings import Settings

from .conftest import HOSTILE, REPO, make_project

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
SAFE_FILTERS = {"sh", "shjoin", "sbatch_directive"}
VERBATIM_ALLOWED = {"line"}  # the config's `setup` lines: raw shell by contract, in their own block


def bash_n(script: str) -> None:
    proc = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
def test_every_example_config_validates_and_renders(config: Path) -> None:
    spec = load_spec(config)
    target = resolve_target(spec, Settings.from_env({"HOME": "/nonexistent"}).target_files)
    plans = [slurm_plan(spec, target.options, "/usr/bin/python3", "/opt/x")]
    if not spec.roles:  # a heterogeneous job (roles:) needs Slurm: no local script
        plans.append(local_plan(spec, "/usr/bin/python3", "/opt/x"))
    for plan in plans:
        script = render_script(plan)
        bash_n(script)
        assert script.startswith("#!/bin/bash\n")
        assert re.search(r"^exec ", script, re.M), "the final command must be exec'd"


def test_templates_quote_every_placeholder() -> None:
    for template in builtin_template_dir().glob("*.j2"):
        for expr in re.findall(r"{{(.*?)}}", template.read_text()):
            filters = {f.strip().split("(")[0] for f in expr.split("|")[1:]}
            if "verbatim" in filters:
                assert expr.split("|")[0].strip() in VERBATIM_ALLOWED, f"{template.name}: {{{{{expr}}}}} is raw"
                continue
            assert filters & SAFE_FILTERS, f"{template.name}: {{{{{expr}}}}} is not quoted"


@pytest.mark.parametrize("value", [v for v in HOSTILE if v])
def test_hostile_target_values_stay_inert(tmp_path: Path, value: str) -> None:
    project = make_project(tmp_path / "p", "pass\n")
    spec = validate(
        {"source_directory": str(project), "entry_script": "train.py", "script_params": {"--x": value}}, tmp_path
    )
    target = Target(
        "t", "slurm", SlurmOptions(partition=value, account=value, additional_parameters={"comment": value})
    )
    script = render_script(slurm_plan(spec, target.options, f"/opt/py {value}/python", f"/opt/{value}"))
    bash_n(script)
    # Executed for real (every command made harmless): nothing a value holds may run.
    harmless = script.replace("exec srun", "exec true srun").replace("set -euo pipefail", "set -uo pipefail")
    proc = subprocess.run(["bash", "-c", harmless], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "PWNED").exists()
    local = render_script(local_plan(spec, f"/opt/py {value}/python", f"/opt/{value}"))
    bash_n(local)


@pytest.mark.parametrize(
    "value, quoted",
    [
        ("debug", "debug"),
        ("a b", '"a b"'),
        ('say "x"', '"say \\"x\\""'),
        ("a#b", '"a\\#b"'),
        ("back\\slash", '"back\\\\slash"'),
        ("it's", '"it\'s"'),
    ],
)
def test_sbatch_quote(value: str, quoted: str) -> None:
    assert sbatch_quote(value) == quoted


def test_directives_from_spec_and_target(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", "pass\n")
    spec = validate(
        {
            "source_directory": str(project),
            "entry_script": "train.py",
            "use_gpu": True,
            "max_run_duration_seconds": 3725,
            "experiment": "exp",
        },
        tmp_path,
    )
    target = Target(
        "t",
        "slurm",
        SlurmOptions(
            partition="gpu",
            time=10,
            cpus_per_task=4,
            additional_parameters={"exclusive": True, "mail_type": "END", "hold": False},
        ),
    )
    directives = dict(slurm_plan(spec, target.options, "/usr/bin/python3", "").directives)
    assert directives["time"] == "0-01:02:05"  # max_run_duration_seconds wins over the target's time
    assert directives["partition"] == "gpu" and directives["cpus-per-task"] == "4"
    assert directives["gpus-per-node"] == "1" and directives["exclusive"] is None
    assert directives["mail-type"] == "END" and "hold" not in directives
    assert directives["job-name"] == "exp" and directives["nodes"] == "1"


def test_site_template_directory_overrides(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", "pass\n")
    spec = validate({"source_directory": str(project), "entry_script": "train.py"}, tmp_path)
    site = tmp_path / "site"
    site.mkdir()
    (site / "_prologue.sh.j2").write_text("set -euo pipefail\nmodule load site-python  # from the site\n")
    script = render_script(local_plan(spec, "/usr/bin/python3", "/opt/x"), str(site))
    assert "module load site-python  # from the site" in script
    bash_n(script)


@pytest.mark.slurm
def test_sbatch_reads_quoted_directives_back_exactly(slurm: dict) -> None:
    """sbatch parses #SBATCH lines itself; what it stores must equal what the user wrote."""
    for value in [v for v in HOSTILE if v]:
        script = (
            f"#!/bin/bash\n#SBATCH --comment={sbatch_quote(value)}\n#SBATCH --hold\n#SBATCH --output=/dev/null\ntrue\n"
        )
        job_id = subprocess.run(
            ["sbatch", "--parsable"], input=script, capture_output=True, text=True, check=True
        ).stdout.strip()
        try:
            stored = subprocess.run(
                ["squeue", "-h", "-j", job_id, "-o", "%k"], capture_output=True, text=True, check=True
            ).stdout
            assert stored.rstrip("\n") == value
        finally:
            subprocess.run(["scancel", job_id])
