"""Issue 19 (REQUEUE, ROLES, SBATCH-OPTION) on the real dev cluster: sbatch 22.05 itself is the reference. Its
long options are hpc_tf's table and it reads prefixes as hpc_tf's resolver does; a `--sig` after hpc_tf's --signal
takes the warning away (a real job shows it), so `validate` and `submit` refuse `sig: USR1@5` with requeue_on
(exit 2, nothing written, nothing queued); `-t 5:99` is 7 minutes to Slurm, as hpc_tf's refusal says; `--signal=PWR`
is refused by sbatch, every signal hpc_tf allows is taken. The unit side is tests/unit/test_hardening_requeue_roles.py.
"""

from __future__ import annotations

import re
import string
import subprocess
import time
from pathlib import Path

import pytest

from hpc_tf.core.slurm_options import SBATCH_LONG_OPTIONS, sbatch_option
from hpc_tf.core.spec import CHECKPOINT_SIGNALS, SBATCH_SIGNALS
from tests.conftest import hpc, make_project, write_config

pytestmark = pytest.mark.slurm

SCRIPT = "#!/bin/bash\ntrue\n"


def sbatch(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sbatch", *args], cwd=cwd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def read_as(name: str, cwd: Path) -> set[str]:
    """What sbatch's getopt_long makes of `--NAME`: the options glibc names (several: ambiguous), or none."""
    for arg in (f"--{name}", f"--{name}=x"):
        said = sbatch(arg, cwd=cwd).stderr
        if "is ambiguous; possibilities:" in said:
            return set(re.findall(r"'--([a-z-]+)'", said.split("possibilities:", 1)[1]))
        named = re.search(r"option '--([a-z-]+)' (requires an argument|doesn't allow an argument)", said)
        if named:
            return {named.group(1)}
        if "unrecognized option" in said:
            return set()
    return {"<taken without a name>"}


def test_sbatch_s_long_options_are_hpc_tf_s_table(slurm: dict[str, str], tmp_path: Path) -> None:
    """`sbatch --X` for every letter lists (or names) every long option starting with it: together, the table."""
    found: set[str] = set()
    for letter in string.ascii_lowercase:
        found |= read_as(letter, tmp_path)
    assert found == set(SBATCH_LONG_OPTIONS), (
        sorted(found - set(SBATCH_LONG_OPTIONS)),
        sorted(set(SBATCH_LONG_OPTIONS) - found),
    )


PREFIXES = ["sig", "sign", "signa", "outp", "accou", "qo", "reserv", "depend", "hol", "requeu", "chd", "job-na"]
PREFIXES += ["arr", "ntasks-per-n", "parsabl", "open-m", "s", "gp", "me", "clu", "cluster", "mem", "no-r", "zz"]


@pytest.mark.parametrize("name", [*PREFIXES, "tasks-per"])
def test_sbatch_reads_a_prefix_as_hpc_tf_s_resolver_does(slurm: dict[str, str], tmp_path: Path, name: str) -> None:
    resolved = sbatch_option(name)
    expected = {resolved.option} if resolved.option else set(resolved.candidates)
    assert read_as(name, tmp_path) == expected


def test_sbatch_takes_a_later_sig_over_hpc_tf_s_signal(slurm: dict[str, str], tmp_path: Path) -> None:
    """Why finding 1 matters: after hpc_tf's `--signal=…USR2@…`, an `#SBATCH --sig=…` line is the job's warning."""
    script = tmp_path / "w.sh"
    script.write_text(
        "#!/bin/bash\n#SBATCH --time=1\n#SBATCH --signal=B:USR2@60\n#SBATCH --sig=B:USR1@60\n"
        "#SBATCH --output=w.out\n"
        "trap 'echo USR1 > got; exit 0' USR1\ntrap 'echo USR2 > got; exit 0' USR2\n"
        "for i in $(seq 120); do sleep 1; done\n"
    )
    job = sbatch("--parsable", str(script), cwd=tmp_path)
    assert job.returncode == 0, job.stderr
    deadline = time.monotonic() + 150
    while not (tmp_path / "got").exists() and time.monotonic() < deadline:
        time.sleep(1)
    assert (tmp_path / "got").read_text().strip() == "USR1"


def test_validate_and_submit_refuse_sig_with_requeue_on(slurm: dict[str, str], tmp_path: Path) -> None:
    """The MUST-SHOW: `additional_parameters: {sig: USR1@5}` with `requeue_on: [timeout]` is refused by validate
    and by submit (exit 2, the key, the option it abbreviates, what to use, the value), and nothing is written or
    queued."""
    project = make_project(tmp_path / "proj", "print('hi')\n")
    cfg = write_config(
        tmp_path / "c.yaml",
        experiment="sig",
        source_directory=str(project),
        entry_script="train.py",
        requeue_on=["timeout"],
        compute_target={"time": "5", "additional_parameters": {"sig": "USR1@5"}},
    )
    runs = tmp_path / "runs"
    for args in (["validate", str(cfg)], ["submit", str(cfg), "--backend", "slurm", "--runs-dir", str(runs)]):
        proc = hpc(*args, cwd=tmp_path)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert (
            "compute_target.additional_parameters.sig: sbatch reads it as --signal, which is set by hpc_tf itself: "
            "use checkpoint_signal and checkpoint_lead_seconds (with requeue_on) (got 'USR1@5')"
        ) in proc.stderr, proc.stderr
    assert not runs.exists()
    queued = subprocess.run(["squeue", "-h", "-o", "%A %Z"], capture_output=True, text=True).stdout
    assert str(tmp_path) not in queued
    # the same job without the override is what hpc_tf submits: its own warning, and the requeue
    cfg = write_config(
        tmp_path / "ok.yaml",
        experiment="sig",
        source_directory=str(project),
        entry_script="train.py",
        requeue_on=["timeout"],
        compute_target={"time": "5"},
    )
    script = hpc("render", str(cfg), "--backend", "slurm").stdout
    assert "#SBATCH --requeue\n" in script and "#SBATCH --signal=USR2@120\n" in script and "--sig=" not in script


def test_a_time_of_5_99_is_7_minutes_to_slurm_as_hpc_tf_says(slurm: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "s.sh").write_text(SCRIPT)
    job = sbatch("--parsable", "--hold", "-t", "5:99", "s.sh", cwd=tmp_path)
    assert job.returncode == 0, job.stderr
    shown = subprocess.run(
        ["scontrol", "show", "job", job.stdout.strip().split(";")[0]], capture_output=True, text=True
    )
    assert "TimeLimit=00:07:00" in shown.stdout, shown.stdout
    project = make_project(tmp_path / "proj", "print('hi')\n")
    cfg = write_config(
        tmp_path / "c.yaml", source_directory=str(project), entry_script="train.py", compute_target={"time": "5:99"}
    )
    proc = hpc("validate", str(cfg))
    assert proc.returncode == 2 and "'6:39'" in proc.stderr and "7 minutes" in proc.stderr, proc.stderr


def test_sbatch_takes_the_signals_hpc_tf_allows_and_refuses_pwr(slurm: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "s.sh").write_text(SCRIPT)
    refused = sbatch("--test-only", "--signal=PWR@60", "s.sh", cwd=tmp_path)
    assert refused.returncode != 0 and "Invalid --signal specification" in refused.stderr, refused.stderr
    for name in SBATCH_SIGNALS:  # CHECKPOINT_SIGNALS among them
        taken = sbatch("--test-only", f"--signal={name}@60", "s.sh", cwd=tmp_path)
        assert taken.returncode == 0 and "to start at" in taken.stderr, (name, taken.stderr)
    assert set(CHECKPOINT_SIGNALS) <= set(SBATCH_SIGNALS)
