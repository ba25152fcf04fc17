"""Job environments: pip (uv or pip) venvs keyed by package set, built once, locked, offline; modules; setup."""

from __future__ import annotations

import json
import os
import site as site_module
import subprocess
import sys
from pathlib import Path

import pytest

from hpc_tf.envs.build import EnvRequest, env_key, normalise_requirement

from .conftest import REPO, hpc, make_project, read_status, write_config

PROBE = """\
    import importlib.util, json, os, sys
    os.makedirs("outputs", exist_ok=True)
    found = {name: importlib.util.find_spec(name) is not None for name in ("six", "tensorflow")}
    with open("outputs/env.json", "w") as f:
        json.dump({"python": sys.executable, "found": found, "module_var": os.environ.get("HPC_TF_MODULE_TEST"),
                   "setup_var": os.environ.get("FROM_SETUP")}, f)
"""


@pytest.fixture
def env_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "envs"
    monkeypatch.setenv("HPC_TF_ENV_CACHE", str(root))
    return root


def config(tmp_path: Path, name: str = "c.yaml", **keys: object) -> Path:
    src = make_project(tmp_path / "src", PROBE)
    return write_config(tmp_path / name, experiment="envs", source_directory=str(src), entry_script="train.py", **keys)


def submitted(proc: subprocess.CompletedProcess[str]) -> Path:
    assert proc.returncode == 0, proc.stderr
    return Path(json.loads(proc.stdout.splitlines()[-1])["run_dir"])


@pytest.mark.parametrize(
    "text, normal",
    [
        ("Six==1.16.0", "six==1.16.0"),
        ("zope.interface>=5,<7", "zope-interface<7,>=5"),
        ("requests[socks,security]", "requests[security,socks]"),
        ("numpy; python_version >= '3.10'", 'numpy; python_version >= "3.10"'),
    ],
)
def test_requirements_are_normalised(text: str, normal: str) -> None:
    assert normalise_requirement(text) == normal


def test_key_depends_on_what_makes_the_environment_not_on_spelling() -> None:
    a = EnvRequest("pip", ("six==1.16.0", "tomli"), base_python="/usr/bin/python3", base_version="3.11.7")
    assert env_key(a) == env_key(
        EnvRequest("pip", ("tomli", "six==1.16.0"), base_python="/usr/bin/python3", base_version="3.11.7")
    )
    for other in (
        EnvRequest("pip", ("six==1.16.0",), base_python="/usr/bin/python3", base_version="3.11.7"),
        EnvRequest("pip", a.packages, base_python="/usr/bin/python3", base_version="3.12.1"),
        EnvRequest("pip", a.packages, base_python="/opt/py/bin/python3", base_version="3.11.7"),
        EnvRequest("pip", a.packages, base_python="/usr/bin/python3", base_version="3.11.7", inherit=True),
    ):
        assert env_key(other) != env_key(a)


@pytest.mark.slurm
def test_pip_packages_on_the_cluster_built_once_then_reused(slurm: dict, tmp_path: Path, env_cache: Path) -> None:
    cfg = config(tmp_path, pip_packages=["six==1.16.0"])
    first = submitted(
        hpc("submit", str(cfg), "--backend", "slurm", "--wait", "--json", "--runs-dir", str(tmp_path / "runs"))
    )
    got = json.loads((first / "outputs" / "env.json").read_text())
    record = json.loads((first / "environment.json").read_text())
    assert got["found"] == {"six": True, "tensorflow": False}  # its own venv, not the base's packages
    assert got["python"] == record["python"] and got["python"].startswith(str(env_cache))
    assert record["built"] is True and "six==1.16.0" in record["freeze"] and record["tool"] == "uv"
    second = submitted(
        hpc("submit", str(cfg), "--backend", "slurm", "--wait", "--json", "--runs-dir", str(tmp_path / "runs"))
    )
    again = json.loads((second / "environment.json").read_text())
    assert again["built"] is False and again["key"] == record["key"]
    assert read_status(second)["state"] == "COMPLETED"


@pytest.mark.slurm
def test_inherited_base_packages_give_tensorflow_on_a_compute_node(
    slurm: dict, tmp_path: Path, env_cache: Path
) -> None:
    cfg = config(tmp_path, pip_packages=["six==1.16.0"], inherit_base_packages=True)
    run_dir = submitted(
        hpc("submit", str(cfg), "--backend", "slurm", "--wait", "--json", "--runs-dir", str(tmp_path / "runs"))
    )
    assert json.loads((run_dir / "outputs" / "env.json").read_text())["found"] == {"six": True, "tensorflow": True}


@pytest.mark.slurm
def test_five_simultaneous_submissions_build_a_new_set_once(slurm: dict, tmp_path: Path, env_cache: Path) -> None:
    cfg = config(tmp_path, pip_packages=["six==1.16.0", "tomli"])
    argv = [
        sys.executable,
        "-m",
        "hpc_tf",
        "submit",
        str(cfg),
        "--backend",
        "slurm",
        "--json",
        "--runs-dir",
        str(tmp_path / "runs"),
    ]
    procs = [
        subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(5)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-1000:] for _, e in outs]
    records = [json.loads((Path(json.loads(o)["run_dir"]) / "environment.json").read_text()) for o, _ in outs]
    assert sum(r["built"] for r in records) == 1 and len({r["key"] for r in records}) == 1
    assert [p.name for p in env_cache.iterdir() if p.is_dir()] == [records[0]["key"]]  # nothing half-built left
    for o, _ in outs:
        assert hpc("wait", json.loads(o)["run_dir"], timeout=120).returncode == 0


@pytest.mark.slurm
def test_environment_built_inside_the_job(slurm: dict, tmp_path: Path, env_cache: Path) -> None:
    cfg = config(tmp_path, pip_packages=["six==1.16.0"], environment_build="job")
    proc = hpc("submit", str(cfg), "--backend", "slurm", "--json", "--runs-dir", str(tmp_path / "runs"))
    run_dir = Path(json.loads(proc.stdout)["run_dir"])
    assert not (run_dir / "environment.json").exists()  # nothing was built on the submit side
    assert hpc("wait", str(run_dir), timeout=180).returncode == 0
    assert json.loads((run_dir / "environment.json").read_text())["built"] is True
    assert json.loads((run_dir / "outputs" / "env.json").read_text())["found"]["six"] is True


@pytest.mark.slurm
def test_modules_and_setup_lines_run_on_the_compute_node(
    slurm: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modules = tmp_path / "modulefiles" / "hpctf-test"
    modules.mkdir(parents=True)
    (modules / "1.0.lua").write_text('setenv("HPC_TF_MODULE_TEST", "loaded-1.0")\n')
    monkeypatch.setenv("MODULEPATH", str(modules.parent))
    cfg = config(tmp_path, modules=["hpctf-test/1.0"], setup=['export FROM_SETUP="$(echo set up)"'])
    run_dir = submitted(
        hpc("submit", str(cfg), "--backend", "slurm", "--wait", "--json", "--runs-dir", str(tmp_path / "runs"))
    )
    got = json.loads((run_dir / "outputs" / "env.json").read_text())
    assert (got["module_var"], got["setup_var"]) == ("loaded-1.0", "set up")
    bad = hpc(
        "submit",
        str(cfg),
        "--backend",
        "slurm",
        "--wait",
        "--json",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--set",
        "modules=[no-such-module/9]",
    )
    assert bad.returncode != 0 and "no-such-module/9" in bad.stderr  # the module system's own message
    assert "ended FAILED" in bad.stderr


def test_failed_build_names_its_log_and_queues_nothing(tmp_path: Path, env_cache: Path) -> None:
    cfg = config(tmp_path, pip_packages=["hpc-tf-no-such-package-xyz==1.0"])
    proc = hpc("submit", str(cfg), "--backend", "local", "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "see its log:" in proc.stderr and ".build.log" in proc.stderr
    log = Path(proc.stderr.split("see its log: ")[1].split()[0])
    assert "hpc-tf-no-such-package-xyz" in log.read_text()
    assert not (tmp_path / "runs").exists() and not list(env_cache.glob("*.tmp-*"))


def test_offline_wheelhouse_with_pip(tmp_path: Path, env_cache: Path) -> None:
    wheelhouse = tmp_path / "wheelhouse"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "six==1.16.0", "-d", str(wheelhouse)], check=True
    )
    cfg = config(tmp_path, pip_packages=["six==1.16.0"], pip_find_links=[str(wheelhouse)], pip_no_index=True)
    proc = hpc(
        "submit",
        str(cfg),
        "--backend",
        "local",
        "--wait",
        "--json",
        "--runs-dir",
        str(tmp_path / "runs"),
        env={"HPC_TF_ENV_TOOL": "pip", "PIP_INDEX_URL": "http://127.0.0.1:9/nowhere"},
    )
    run_dir = submitted(proc)
    record = json.loads((run_dir / "environment.json").read_text())
    assert record["tool"] == "pip" and record["request"]["no_index"] is True
    assert json.loads((run_dir / "outputs" / "env.json").read_text())["found"]["six"] is True
    listed = json.loads(hpc("env", "list", "--json").stdout)
    assert [e["key"] for e in listed] == [record["key"]]
    assert json.loads(hpc("env", "prune", "--all", "--json").stdout) == [record["key"]]
    assert json.loads(hpc("env", "list", "--json").stdout) == []


def test_requirements_file_content_is_part_of_the_key(tmp_path: Path, env_cache: Path) -> None:
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("# pinned\nsix==1.16.0\n")
    cfg = config(tmp_path, pip_requirements_file="requirements.txt")
    first = submitted(
        hpc("submit", str(cfg), "--backend", "local", "--wait", "--json", "--runs-dir", str(tmp_path / "runs"))
    )
    assert json.loads((first / "outputs" / "env.json").read_text())["found"]["six"] is True
    reqs.write_text("six==1.16.0\ntomli==2.0.1\n")
    second = submitted(
        hpc("submit", str(cfg), "--backend", "local", "--wait", "--json", "--runs-dir", str(tmp_path / "runs"))
    )
    keys = [json.loads((d / "environment.json").read_text())["key"] for d in (first, second)]
    assert keys[0] != keys[1] and "tomli==2.0.1" in json.loads((second / "environment.json").read_text())["freeze"]


def test_conda_packages_without_conda_is_a_clear_error(tmp_path: Path, env_cache: Path) -> None:
    """No conda channel is reachable from these machines: only the detection and the error are real here.
    (A package the job's interpreter already has is used as it is: `tests/test_seed.py`'s scikit-learn.)"""
    cfg = config(tmp_path, conda_packages=["numpy", "hpctf-no-such-package"])
    proc = hpc(
        "submit", str(cfg), "--backend", "local", "--runs-dir", str(tmp_path / "runs"), env={"PATH": "/usr/bin:/bin"}
    )
    assert proc.returncode == 2
    assert (
        "conda_packages: conda_packages / conda_dependencies_file need conda, mamba or micromamba on PATH"
        in proc.stderr
    )
    assert "pip_packages" in proc.stderr and not (tmp_path / "runs").exists()


@pytest.mark.slurm
def test_inherited_packages_are_the_submitting_virtualenvs(slurm: dict, tmp_path: Path, env_cache: Path) -> None:
    """Submitted from a virtualenv, `inherit_base_packages` shows the job the *virtualenv's* packages, not
    only those of the interpreter it was made from: a module that exists only in the venv is importable."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "only_in_the_venv.py").write_text("WHERE = 'venv'\n")
    # A venv made from this (CI) venv's interpreter sees the *base* interpreter's packages, which may hold none of
    # hpc_tf's (a fresh machine): the suite's own site-packages are layered under it, as a shared site would be.
    (site / "_suite_site.pth").write_text("".join(f"{p}\n" for p in site_module.getsitepackages()))
    src = make_project(tmp_path / "src", "import only_in_the_venv, six\nprint('found', only_in_the_venv.WHERE)\n")
    cfg = write_config(
        tmp_path / "c.yaml",
        experiment="venv",
        source_directory=str(src),
        entry_script="train.py",
        pip_packages=["six==1.16.0"],
        inherit_base_packages=True,
    )
    proc = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "hpc_tf",
            "submit",
            str(cfg),
            "--backend",
            "slurm",
            "--wait",
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "found venv" in proc.stdout
