"""Config validation: every problem at once, each naming the file, the dotted key, the value and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpc_tf.config.loading import apply_overrides, load_spec, validate
from hpc_tf.config.targets import resolve_target
from hpc_tf.core.plan import script_argv
from hpc_tf.errors import ConfigError
from hpc_tf.settings import Settings

from .conftest import make_project, write_config


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "src", "print('hi')\n")


def base(project: Path, **extra: object) -> dict:
    return {"source_directory": str(project), "entry_script": "train.py", **extra}


def problems_of(data: dict, base_dir: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate(data, base_dir, "cfg.yaml")
    return [str(p) for p in info.value.problems]


def test_defaults_follow_the_seed(project: Path) -> None:
    spec = validate(base(project), project)
    assert (spec.node_count, spec.per_node, spec.worker_count, spec.parameter_server_count) == (1, 1, 1, 1)
    assert spec.use_gpu is False and spec.distributed_backend is None and spec.script_params == {}
    assert spec.source_directory == str(project.resolve())


@pytest.mark.parametrize(
    "extra, key, words",
    [
        ({"entry_scrpit": "x.py"}, "entry_scrpit", "did you mean 'entry_script'"),
        ({"node_count": 0}, "node_count", "expected an integer >= 1"),
        ({"node_count": "two"}, "node_count", "expected an integer"),
        (
            {"process_count_per_node": 65534},
            "process_count_per_node",
            "expected an integer <= 65533 (Slurm's MaxTasksPerNode may not exceed 65533)",
        ),
        (
            {"node_count": 65537, "distributed_backend": "mpi"},
            "node_count",
            "expected an integer <= 65536 (Slurm reads at most 65536 hosts in one hostlist range",
        ),
        (
            {"distributed_backend": "ps", "node_count": 2, "roles": {"worker": {"node_count": 70000}}},
            "roles.worker.node_count",
            "expected an integer <= 65536",
        ),
        (
            {"distributed_backend": "ps", "worker_count": 40001},
            "worker_count",
            "expected an integer <= 40000 (each task of a TF cluster listens on its own port",
        ),
        (
            {"distributed_backend": "ps", "node_count": 100, "worker_count": 39999},
            "worker_count + parameter_server_count",
            "'ps' runs 40001 tasks, at most 40000: each task of a TF cluster listens on its own port of the job's "
            "block in 20000-59999",
        ),
        (
            {"distributed_backend": "multiworker", "node_count": 9408, "process_count_per_node": 8},
            "node_count × process_count_per_node",
            "'multiworker' runs 75264 tasks, at most 40000",
        ),
        (
            {"environment_variables": {"BIG": "x" * 131072}},
            "environment_variables.BIG",
            "131077 bytes as BIG=value: Linux starts no program with an environment string over 131072 bytes",
        ),
        ({"distributed_backend": "horovod"}, "distributed_backend", "valid values: null, 'mpi', 'ps', 'multiworker'"),
        (
            {"distributed_backend": "ps", "node_count": 2, "worker_count": 2, "process_count_per_node": 1},
            "worker_count + parameter_server_count",
            "needs 4 tasks (1 chief + 1 ps + 2 workers) but node_count × process_count_per_node = 2 × 1 = 2 slots: 2 missing",
        ),
        (
            {"distributed_backend": "ps", "node_count": 3, "parameter_server_count": 0},
            "parameter_server_count",
            "at least 1 parameter server",
        ),
        (
            {"distributed_backend": "mpi", "node_count": 2, "worker_count": 2},
            "worker_count",
            "only used with distributed_backend 'ps'",
        ),
        (
            {"distributed_backend": "ps", "node_count": 3, "launcher": "mpirun"},
            "launcher",
            "only used with distributed_backend 'mpi'",
        ),
        ({"distributed_backend": "mpi", "launcher": "horovodrun"}, "launcher", "valid values: 'srun', 'mpirun'"),
        ({"distributed_backend": "ps", "node_count": 3, "ps_mode": "auto"}, "ps_mode", "valid values: 'managed'"),
        ({"distributed_backend": "mpi", "mpi_plugin": "pmi 2"}, "mpi_plugin", "srun --mpi plugin name"),
        ({"pip_packages": ["requests", "numpy>>1"]}, "pip_packages[1]", "not a valid pip requirement (PEP 508)"),
        ({"conda_packages": ["scikit-learn; rm -rf /"]}, "conda_packages[0]", "expected a conda package spec"),
        (
            {"pip_packages": ["six"], "conda_packages": ["numpy"]},
            "pip_packages + conda_packages",
            "one package manager per job",
        ),
        ({"pip_requirements_file": "nope.txt"}, "pip_requirements_file", "file not found"),
        ({"modules": ["cuda/12.2", "bad name;"]}, "modules[1]", "expected a module name"),
        ({"setup": ["module purge", "  "]}, "setup[1]", "an empty setup line"),
        ({"setup": ["echo a\necho b"]}, "setup[0]", "newline"),
        ({"python": "/no/such/python3"}, "python", "interpreter not found"),
        ({"inherit_base_packages": True}, "inherit_base_packages", "only used with pip_packages"),
        ({"pip_packages": ["six"], "pip_no_index": True}, "pip_no_index", "set pip_find_links"),
        ({"pip_packages": ["six"], "environment_build": "later"}, "environment_build", "valid values: 'submit'"),
        ({"node_count": 2}, "node_count", "needs a distributed_backend"),
        ({"experiment": "../evil"}, "experiment", "letters, digits"),
        ({"environment_variables": {"1BAD": "x"}}, "environment_variables.1BAD", "invalid environment variable name"),
        ({"script_params": {"--x": "a\nb"}}, "script_params.--x", "newline"),
        ({"script_params": {"--x": {"nested": 1}}}, "script_params.--x", "expected a string, number"),
        ({"environment_variables": {"A": [1]}}, "environment_variables.A", "expected a string, number or boolean"),
        ({"max_run_duration_seconds": 0}, "max_run_duration_seconds", ">= 1"),
        ({"compute_target": {"partiton": "gpu"}}, "compute_target.partiton", "did you mean 'partition'"),
        ({"compute_target": {"time": "soon"}}, "compute_target.time", "Slurm time"),
        ({"compute_target": {"mem": "lots"}}, "compute_target.mem", "memory size"),
        (
            {"compute_target": {"additional_parameters": {"ntasks": 4}}},
            "compute_target.additional_parameters.ntasks",
            "set by hpc_tf",
        ),
        (
            {"compute_target": {"additional_parameters": {"bad name": 1}}},
            "compute_target.additional_parameters.bad name",
            "not a long sbatch option",
        ),
        ({"compute_target": "has space"}, "compute_target", "target name"),
        ({"entry_script": "missing.py"}, "entry_script", "file not found"),
        ({"entry_script": "../outside.py"}, "entry_script", "inside source_directory"),
        ({"entry_script": "/etc/passwd"}, "entry_script", "relative"),
        ({"source_directory": "/no/such/dir"}, "source_directory", "directory not found"),
        ({"use_gpu": "maybe"}, "use_gpu", "expected true or false"),
    ],
)
def test_each_problem_names_file_key_and_what_is_allowed(project: Path, extra: dict, key: str, words: str) -> None:
    found = problems_of(base(project, **extra), project)
    matching = [p for p in found if p.startswith(f"cfg.yaml: {key}:")]
    assert matching, found
    assert any(words in p for p in matching), matching


def test_all_problems_are_reported_at_once(project: Path) -> None:
    data = base(
        project,
        node_count=0,
        entry_scrpit="x",
        distributed_backend="nope",
        use_gpu="maybe",
        compute_target={"partiton": "x"},
    )
    data["entry_script"] = "missing.py"
    keys = {p.split(": ")[1] for p in problems_of(data, project)}
    assert {
        "node_count",
        "entry_scrpit",
        "distributed_backend",
        "use_gpu",
        "compute_target.partiton",
        "entry_script",
    } <= keys


def test_missing_required_keys(tmp_path: Path) -> None:
    found = problems_of({}, tmp_path)
    assert any("source_directory: is required" in p for p in found)
    assert any("entry_script: is required" in p for p in found)


def test_nul_and_newlines_rejected_everywhere(project: Path) -> None:
    found = problems_of(
        base(project, environment_variables={"A": "x\x00y"}, compute_target={"partition": "a\rb"}), project
    )
    assert any(p.startswith("cfg.yaml: environment_variables.A:") for p in found)
    assert any(p.startswith("cfg.yaml: compute_target.partition:") for p in found)


@pytest.mark.parametrize(
    "params, argv",
    [
        ({"--batch-size": 50, "--learning-rate": 0.01}, ["--batch-size", "50", "--learning-rate", "0.01"]),
        ({"--flag": None, "pos": "x"}, ["--flag", "pos", "x"]),
        ({"--layer": [1, 2, 3]}, ["--layer", "1", "--layer", "2", "--layer", "3"]),
        ({"--name": "it's $(x)"}, ["--name", "it's $(x)"]),
        ({"--on": True}, ["--on", "True"]),
        ({}, []),
    ],
)
def test_script_params_to_argv_in_order(params: dict, argv: list[str]) -> None:
    assert script_argv(params) == argv


def test_yaml_file_relative_paths_and_overrides(tmp_path: Path) -> None:
    make_project(tmp_path / "proj", "pass\n")
    cfg = write_config(
        tmp_path / "c.yaml", source_directory="proj", entry_script="train.py", script_params={"--lr": 0.1}
    )
    spec = load_spec(cfg, ["script_params.--lr=0.5", "experiment=exp2", "compute_target.partition=debug"])
    assert spec.source_directory == str((tmp_path / "proj").resolve())
    assert spec.script_params == {"--lr": 0.5} and spec.experiment == "exp2"
    assert spec.compute_target == {"partition": "debug"}


@pytest.mark.parametrize("override", ["noequals", "=value", "entry_script.x=1"])
def test_bad_overrides_are_config_errors(override: str) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides({"entry_script": "a.py"}, [override])
    assert "--set" in str(info.value)


def test_yaml_syntax_and_shape_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("a: [1, 2\n")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    for name, words in (("bad.yaml", "not valid YAML"), ("list.yaml", "mapping"), ("none.yaml", "not found")):
        with pytest.raises(ConfigError) as info:
            load_spec(tmp_path / name)
        assert words in str(info.value)


def test_gpus_per_node_must_cover_processes(tmp_path: Path, project: Path) -> None:
    spec = validate(
        base(
            project,
            distributed_backend="mpi",
            process_count_per_node=4,
            use_gpu=True,
            compute_target={"gpus_per_node": 2},
        ),
        project,
    )
    with pytest.raises(ConfigError) as info:
        resolve_target(spec, Settings.from_env({"HOME": str(tmp_path)}).target_files)
    assert "compute_target.gpus_per_node: 2 GPUs per node for 4 processes per node" in str(info.value)


def test_named_targets_from_the_search_path(tmp_path: Path, project: Path) -> None:
    targets = tmp_path / "targets.yaml"
    targets.write_text("gpu:\n  partition: gpu\n  gpus_per_node: 4\nbroken:\n  partiton: x\n")
    env = {"HPC_TF_TARGETS": str(targets), "HOME": str(tmp_path)}
    target = resolve_target(validate(base(project, compute_target="gpu"), project), Settings.from_env(env).target_files)
    assert (target.backend, target.options.partition, target.options.gpus_per_node) == ("slurm", "gpu", 4)
    assert (
        resolve_target(
            validate(base(project, compute_target="local"), project), Settings.from_env(env).target_files
        ).backend
        == "local"
    )
    assert resolve_target(validate(base(project), project), Settings.from_env(env).target_files).backend == "auto"
    with pytest.raises(ConfigError) as info:
        resolve_target(validate(base(project, compute_target="nope"), project), Settings.from_env(env).target_files)
    assert "known names: auto, broken, gpu, local" in str(info.value)
    with pytest.raises(ConfigError) as info:
        resolve_target(validate(base(project, compute_target="broken"), project), Settings.from_env(env).target_files)
    assert f"{targets}: broken.partiton: unknown key; did you mean 'partition'" in str(info.value)
