"""The installed artefact is what users get: a wheel built from the tracked files holds exactly the package's
tracked files (packages are found, not listed), and a real job runs from a non-editable install in a fresh
virtualenv, with nothing of the checkout on its path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO, make_project, write_config


def tracked(prefix: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", prefix], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return sorted(line for line in out.splitlines() if line)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the tracked files (as an sdist would hold them), so untracked files in a
    developer's checkout can neither hide nor add anything."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    for rel in tracked("."):
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    isolation = [] if _has_setuptools() else ["--use-pep517"]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--disable-pip-version-check",
            *(["--no-build-isolation"] if not isolation else isolation),
            "-w",
            str(root / "dist"),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (built,) = (root / "dist").glob("hpc_tf-*.whl")
    return built


def _has_setuptools() -> bool:
    import importlib.util

    return importlib.util.find_spec("setuptools") is not None


def test_the_wheel_holds_exactly_the_tracked_package_files(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = sorted(n for n in z.namelist() if not n.split("/", 1)[0].endswith(".dist-info"))
        entry_points = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt"))).decode()
    expected = tracked("hpc_tf")
    assert [n for n in expected if n not in names] == [], "tracked files missing from the wheel"
    assert [n for n in names if n not in expected] == [], "files in the wheel that are not tracked"
    assert {"hpc_tf/sbatch_templates/slurm.sh.j2", "hpc_tf/py.typed", "hpc_tf/sweeps/core/spec.py"} <= set(names)
    assert "hpc_tf = hpc_tf.cli:main" in entry_points


@pytest.mark.slurm
def test_a_job_runs_from_a_non_editable_install_in_a_fresh_virtualenv(wheel: Path, slurm: dict, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    src = make_project(
        tmp_path / "src",
        "import json, os, sys, hpc_tf\nos.makedirs('outputs', exist_ok=True)\n"
        "json.dump({'hpc_tf': hpc_tf.__file__, 'python': sys.executable}, open('outputs/where.json', 'w'))\n",
    )
    cfg = write_config(tmp_path / "c.yaml", experiment="wheel", source_directory=str(src), entry_script="train.py")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(
        [
            str(venv / "bin" / "hpc_tf"),
            "submit",
            str(cfg),
            "--backend",
            "slurm",
            "--wait",
            "--json",
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = Path(json.loads(next(x for x in reversed(proc.stdout.splitlines()) if x.startswith("{")))["run_dir"])
    status = json.loads((run_dir / "status.json").read_text())
    assert (status["state"], status["exit_code"]) == ("COMPLETED", 0), status
    where = json.loads((run_dir / "outputs" / "where.json").read_text())
    assert where["hpc_tf"].startswith(str(venv)), where  # the installed hpc_tf, not the checkout
    assert str(REPO) not in (run_dir / "job.sh").read_text()  # no PYTHONPATH to the checkout in the script
