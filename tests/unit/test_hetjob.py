"""Per-role placement (issue 12, phase 1): `roles:` validation, the components of a heterogeneous job, their
#SBATCH options, the one srun step, and every task's slot from the components' node lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hpc_tf.config.loading import validate, validate_config
from hpc_tf.config.targets import resolve_target
from hpc_tf.core.components import components, het_nodelists, het_slots
from hpc_tf.core.plan import component_directives, slurm_plan
from hpc_tf.core.records import ComponentRecord
from hpc_tf.core.spec import EstimatorSpec, SlurmOptions
from hpc_tf.core.tfcluster import bind_gpus, task_slots, tf_config
from hpc_tf.errors import ConfigError, Problem
from hpc_tf.settings import Settings

REPO = Path(__file__).resolve().parent.parent.parent
BASE: dict[str, Any] = {
    "source_directory": "parameter-server",
    "entry_script": "train.py",
    "distributed_backend": "ps",
    "worker_count": 2,
    "parameter_server_count": 1,
}
PY = "/usr/bin/python3"


def spec_of(**keys: Any) -> EstimatorSpec:
    return validate({**BASE, **keys}, REPO / "configs")


def problems_of(**keys: Any) -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        spec = spec_of(**keys)
        resolve_target(spec, ())  # the target's own rules (compute_target with roles)
    return info.value.problems


# ---------------------------------------------------------------------------------------------- components
@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        # (role, nodes, tasks per node, first rank, GPUs per node, partition) of each component
        (
            {"roles": {"worker": {"partition": "gpu"}}, "compute_target": {"partition": "cpu"}},
            [("chief", 1, 1, 0, 0, "cpu"), ("ps", 1, 1, 1, 0, "cpu"), ("worker", 2, 1, 2, 0, "gpu")],
        ),
        (
            {
                "roles": {
                    "ps": {"node_count": 1, "process_count_per_node": 2},
                    "worker": {"process_count_per_node": 2},
                },
                "parameter_server_count": 2,
                "worker_count": 4,
            },
            [("chief", 1, 1, 0, 0, None), ("ps", 1, 2, 1, 0, None), ("worker", 2, 2, 3, 0, None)],
        ),
        (
            {"roles": {"worker": {"gpus_per_node": 2, "process_count_per_node": 2}}, "use_gpu": True},
            [("chief", 1, 1, 0, 0, None), ("ps", 1, 1, 1, 0, None), ("worker", 1, 2, 2, 2, None)],
        ),
        (
            {"roles": {"evaluator": {"partition": "gpu", "gpus_per_node": 1}}, "evaluator": True, "use_gpu": True},
            [
                ("chief", 1, 1, 0, 0, None),
                ("ps", 1, 1, 1, 0, None),
                ("worker", 2, 1, 2, 0, None),
                ("evaluator", 1, 1, 4, 1, "gpu"),
            ],
        ),
    ],
    ids=["defaults-from-target", "packed", "gpus", "evaluator"],
)
def test_components(keys: dict[str, Any], expected: list[tuple]) -> None:
    spec = spec_of(**keys)
    comps = components(spec, resolve_target(spec, ()).options)
    records = [c.record for c in comps]
    got = [
        (r.role, r.node_count, r.tasks_per_node, r.first_rank, c.options.gpus_per_node or 0, c.options.partition)
        for r, c in zip(records, comps, strict=True)
    ]
    assert got == expected
    assert [r.index for r in records] == list(range(len(comps)))
    assert sum(r.ntasks for r in records) == spec.ntasks


def blocks_of(spec: EstimatorSpec, target: SlurmOptions) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """(role, #SBATCH options) of each component, as the job script gives them."""
    return slurm_plan(spec, target, PY, "").components


def test_whole_job_options_only_in_component_zero() -> None:
    spec = spec_of(
        roles={"ps": {"mem": "16G"}, "worker": {"partition": "gpu", "constraint": "a100", "mem": "32G"}},
        compute_target={
            "partition": "cpu",
            "account": "ml",
            "qos": "high",
            "time": "2:00:00",
            "mem": "8G",
            "additional_parameters": {"mail_type": "END", "comment": "x"},
        },
        requeue_on=["timeout"],
        checkpoint_lead_seconds=60,
    )
    blocks = blocks_of(spec, resolve_target(spec, ()).options)
    assert [role for role, _ in blocks] == ["chief", "ps", "worker"]
    assert blocks[0][1] == [  # as one allocation's: the job's name and log, its size, requeue, then every option
        ("job-name", "default"),
        ("output", "logs/slurm-%j.out"),
        ("open-mode", "append"),
        ("nodes", "1"),
        ("ntasks-per-node", "1"),
        ("requeue", None),
        ("signal", "USR2@60"),
        ("time", "2:00:00"),
        ("partition", "cpu"),
        ("account", "ml"),
        ("qos", "high"),
        ("mem", "8G"),
        ("mail-type", "END"),
        ("comment", "x"),
    ]
    assert blocks[1][1] == [("nodes", "1"), ("ntasks-per-node", "1"), ("partition", "cpu"), ("mem", "16G")]
    assert blocks[2][1] == [
        ("nodes", "2"),
        ("ntasks-per-node", "1"),
        ("partition", "gpu"),
        ("mem", "32G"),
        ("constraint", "a100"),
    ]
    whole_job = {"job-name", "output", "open-mode", "requeue", "no-requeue", "signal", "time", "account", "qos"}
    assert not whole_job & {name for _, block in blocks[1:] for name, _ in block}


def test_max_run_duration_wins_and_no_requeue_by_default() -> None:
    spec = spec_of(roles={"worker": {}}, compute_target={"time": 60}, max_run_duration_seconds=90)
    names = dict(blocks_of(spec, resolve_target(spec, ()).options)[0][1])
    assert names["time"] == "0-00:01:30" and "no-requeue" in names and "requeue" not in names


def test_role_additional_parameters_stay_in_their_component() -> None:
    spec = spec_of(
        roles={"worker": {"additional_parameters": {"exclusive": True, "gres": "nvme:1", "contiguous": False}}}
    )
    worker = components(spec, SlurmOptions())[2]
    assert component_directives(spec, worker)[-2:] == [("exclusive", None), ("gres", "nvme:1")]


def test_one_srun_step_spans_the_components() -> None:
    spec = spec_of(roles={"worker": {"process_count_per_node": 2}}, launcher_args=["--cpu-bind=none"])
    argv = slurm_plan(spec, SlurmOptions(), PY, "").launch
    runtime = ["--cpu-bind=none", PY, "-u", "-m", "hpc_tf.job", "."]
    assert argv == [
        "srun",
        "--unbuffered",
        "--kill-on-bad-exit=1",
        *["--het-group=0", "--ntasks=1", "--mpi=none", "--output=logs/launcher-het0-%t.log", *runtime],
        ":",
        *["--het-group=1", "--ntasks=1", "--mpi=none", "--output=logs/launcher-het1-%t.log", *runtime],
        ":",
        *["--het-group=2", "--ntasks=2", "--mpi=none", "--output=logs/launcher-het2-%t.log", *runtime],
    ]


def test_one_planner_for_one_allocation_and_roles() -> None:
    """One allocation is a job of one component: its block is the script's `directives`; roles give one each."""
    spec = spec_of(roles={"worker": {}})
    plan = slurm_plan(spec, SlurmOptions(), PY, "")
    assert plan.directives == [] and [role for role, _ in plan.components] == ["chief", "ps", "worker"]
    assert plan.launch.count(":") == 2
    one = spec_of()
    (only,) = components(one, SlurmOptions())
    assert (only.record.node_count, only.spread_ntasks) == (1, 4)  # 'ps' in one allocation: Slurm spreads the tasks
    plan = slurm_plan(one, SlurmOptions(), PY, "")
    assert plan.components == [] and plan.directives == component_directives(one, only)


# ---------------------------------------------------------------------------------------------- slots
RECORDED_ENV = {  # as Slurm sets them in a task of a 3-component job (n10 before n9: never sorted)
    "SLURM_HET_SIZE": "3",
    "SLURM_JOB_NODELIST_HET_GROUP_0": "n1",
    "SLURM_JOB_NODELIST_HET_GROUP_1": "n[2-3]",
    "SLURM_JOB_NODELIST_HET_GROUP_2": "n10,n9",
    "SLURM_JOB_ID": "4711",
}


def test_nodelists_from_recorded_env_keep_slurms_order() -> None:
    assert het_nodelists(RECORDED_ENV) == [["n1"], ["n2", "n3"], ["n10", "n9"]]


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({}, "SLURM_HET_SIZE is not set"),
        ({"SLURM_HET_SIZE": "x"}, "SLURM_HET_SIZE is x"),
        ({"SLURM_HET_SIZE": "2", "SLURM_JOB_NODELIST_HET_GROUP_0": "n1"}, "SLURM_JOB_NODELIST_HET_GROUP_1 is not set"),
    ],
)
def test_nodelists_name_what_is_missing(env: dict[str, str], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        het_nodelists(env)


def records_of(spec: EstimatorSpec) -> list[ComponentRecord]:
    return [c.record for c in components(spec, SlurmOptions())]


def _het_spec() -> EstimatorSpec:
    return spec_of(
        parameter_server_count=2,
        roles={"ps": {"node_count": 2}, "worker": {"partition": "gpu", "gpus_per_node": 1}},
        use_gpu=True,
    )


def test_slots_from_recorded_env() -> None:
    spec = _het_spec()
    slots = het_slots(records_of(spec), het_nodelists(RECORDED_ENV), 4711)
    base = slots[0].port or 0
    assert [(s.rank, s.node, s.local_rank, s.role, s.index, (s.port or 0) - base) for s in slots] == [
        (0, "n1", 0, "chief", 0, 0),
        (1, "n2", 0, "ps", 0, 1),
        (2, "n3", 0, "ps", 1, 2),
        (3, "n10", 0, "worker", 0, 3),
        (4, "n9", 0, "worker", 1, 4),
    ]
    # the same roles, indexes and ports as the job in one allocation on these nodes: only placement differs
    flat = task_slots("ps", ["n1", "n2", "n3", "n10", "n9"], [1] * 5, 2, 4711)
    assert slots == flat
    # parameter servers see no GPU, even where one is visible; a worker keeps the one Slurm gave it
    assert [bind_gpus("0", s, True) for s in slots] == ["0", "", "", "0", "0"]


def test_tf_config_of_each_task() -> None:
    spec = _het_spec()
    slots = het_slots(records_of(spec), het_nodelists(RECORDED_ENV), 4711)
    port = slots[0].port or 0
    cluster = {
        "chief": [f"n1:{port}"],
        "ps": [f"n2:{port + 1}", f"n3:{port + 2}"],
        "worker": [f"n10:{port + 3}", f"n9:{port + 4}"],
    }
    expected = [("chief", 0), ("ps", 0), ("ps", 1), ("worker", 0), ("worker", 1)]
    for rank, (role, index) in enumerate(expected):
        assert tf_config(slots, rank) == {
            "cluster": cluster,
            "task": {"type": role, "index": index},
            "environment": "cloud",
        }


def test_several_tasks_per_node_and_an_evaluator() -> None:
    spec = spec_of(worker_count=4, evaluator=True, roles={"worker": {"process_count_per_node": 2}})
    slots = het_slots(records_of(spec), [["c1"], ["c2"], ["g2", "g1"], ["e1"]], 7)
    assert [(s.node, s.local_rank, s.role, s.index) for s in slots] == [
        ("c1", 0, "chief", 0),
        ("c2", 0, "ps", 0),
        ("g2", 0, "worker", 0),
        ("g2", 1, "worker", 1),
        ("g1", 0, "worker", 2),
        ("g1", 1, "worker", 3),
        ("e1", 0, "evaluator", 0),
    ]
    assert slots[-1].port is None and "evaluator" not in tf_config(slots, 0)["cluster"]


@pytest.mark.parametrize(
    ("nodelists", "words"),
    [
        ([["n1"], ["n2"]], "2 node lists for 3 components"),
        ([["n1"], ["n2"], ["n3"]], r"component 2 \(worker\) has 1 nodes \(n3\) but 2 planned"),
    ],
)
def test_a_layout_that_does_not_fit_the_plan_is_refused(nodelists: list[list[str]], words: str) -> None:
    spec = spec_of(roles={"worker": {}})
    with pytest.raises(ValueError, match=words):
        het_slots(records_of(spec), nodelists, 1)


# ---------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("keys", "key", "words"),
    [
        ({"distributed_backend": "mpi", "roles": {"worker": {}}}, "roles", "only used with distributed_backend 'ps'"),
        ({"roles": {}}, "roles", "empty"),
        ({"roles": ["worker"]}, "roles", "expected a mapping"),
        ({"roles": {"workers": {}}}, "roles.workers", "did you mean 'worker'"),
        ({"roles": {"worker": "gpu"}}, "roles.worker", "expected a mapping"),
        ({"roles": {"worker": {"time": 60}}}, "roles.worker.time", "put it in compute_target"),
        ({"roles": {"ps": {"account": "a"}}}, "roles.ps.account", "whole job"),
        ({"roles": {"worker": {"partiton": "gpu"}}}, "roles.worker.partiton", "did you mean 'partition'"),
        ({"roles": {"worker": {"mem": "lots"}}}, "roles.worker.mem", "Slurm memory size"),
        (
            {"roles": {"worker": {"additional_parameters": {"mail_type": "END"}}}},
            "roles.worker.additional_parameters.mail_type",
            "compute_target.additional_parameters",
        ),
        (
            {"roles": {"worker": {"additional_parameters": {"ntasks": 3}}}},
            "roles.worker.additional_parameters.ntasks",
            "set by hpc_tf",
        ),
        (
            {"roles": {"worker": {"node_count": 3}}},
            "roles.worker.node_count × roles.worker.process_count_per_node",
            "3 × 1 = 3 tasks, but the worker role runs 2 (worker_count is 2)",
        ),
        (
            {"roles": {"ps": {"node_count": 2}}},
            "roles.ps.node_count × roles.ps.process_count_per_node",
            "parameter_server_count is 1",
        ),
        (
            {"roles": {"chief": {"process_count_per_node": 2}}},
            "roles.chief.process_count_per_node",
            "the chief is exactly one task",
        ),
        (
            {"worker_count": 3, "roles": {"worker": {"process_count_per_node": 2}}},
            "roles.worker.process_count_per_node",
            "do not divide",
        ),
        ({"roles": {"evaluator": {}}}, "roles.evaluator", "only with evaluator: true"),
        (
            {"roles": {"ps": {"gpus_per_node": 1}}, "use_gpu": True},
            "roles.ps.gpus_per_node",
            "parameter servers hold variables and get no GPU",
        ),
        (
            {"roles": {"ps": {"additional_parameters": {"gres": "gpu:1"}}}},
            "roles.ps.additional_parameters.gres",
            "get no GPU",
        ),
        ({"roles": {"worker": {"gpus_per_node": 1}}}, "roles.worker.gpus_per_node", "only with use_gpu: true"),
        ({"roles": {"worker": {}}, "use_gpu": True}, "use_gpu", "GPUs are asked per role"),
        (
            {
                "roles": {"worker": {"gpus_per_node": 1, "process_count_per_node": 2}},
                "use_gpu": True,
                "worker_count": 2,
            },
            "roles.worker.gpus_per_node",
            "each needs its own GPU",
        ),
        ({"roles": {"worker": {}}, "node_count": 3}, "node_count", "each role gives its own"),
        ({"roles": {"worker": {}}, "process_count_per_node": 2}, "process_count_per_node", "each role gives its own"),
        ({"roles": {"worker": {}}, "compute_target": "local"}, "roles + compute_target", "needs Slurm"),
        (
            {"roles": {"worker": {}}, "compute_target": {"gpus_per_node": 4}},
            "compute_target.gpus_per_node",
            "parameter servers included",
        ),
        (
            {"roles": {"worker": {}}, "compute_target": {"additional_parameters": {"exclusive": True}}},
            "compute_target.additional_parameters.exclusive",
            "first component only",
        ),
        ({"roles": {"ps": {"mem": "32G"}}}, "roles.worker.mem", "ps component's --mem=32G"),
    ],
)
def test_every_conflict_is_named(keys: dict[str, Any], key: str, words: str) -> None:
    problems = problems_of(**keys)
    found = [p for p in problems if p.key == key]
    assert found, f"no problem for {key}: {problems}"
    assert words in found[0].message, found[0]


def test_requeue_on_is_allowed_and_mem_given_for_all_is_fine() -> None:
    spec = spec_of(roles={"ps": {"mem": "32G"}}, compute_target={"mem": "4G"}, requeue_on=["preemption"])
    assert resolve_target(spec, ()).options.mem == "4G"


def test_a_sweep_with_roles_is_refused() -> None:
    data = {**BASE, "roles": {"worker": {}}, "hyperdrive": {"hyperparameter_sampling": {"type": "grid"}}}
    with pytest.raises(ConfigError) as info:
        validate_config(data, REPO / "configs")
    found = [p for p in info.value.problems if p.key == "roles + hyperdrive"]
    assert found and "no arrays of heterogeneous jobs" in found[0].message


def test_a_sweep_given_an_estimator_with_roles_is_refused(tmp_path: Path) -> None:
    from hpc_tf.sweeps.core.parse import parse_sweep
    from hpc_tf.sweeps.submit import prepare_sweep

    raw = {
        "hyperparameter_sampling": {"type": "grid", "parameter_space": {"--lr": "choice(0.1, 0.01)"}},
        "primary_metric_name": "loss",
        "primary_metric_goal": "minimize",
        "max_total_runs": 2,
    }
    sweep, problems = parse_sweep(raw, "hyperdrive", None)
    assert sweep is not None, problems
    with pytest.raises(ConfigError, match="no arrays of heterogeneous jobs"):
        prepare_sweep(spec_of(roles={"worker": {}}), sweep, _settings(tmp_path), "slurm", probe=False)


# ---------------------------------------------------------------------------------------------- render, submit
def _settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"HOME": str(tmp_path), "HPC_TF_RUNS_DIR": str(tmp_path / "runs")})


def test_render_makes_the_heterogeneous_script_and_local_refuses(tmp_path: Path) -> None:
    from hpc_tf.runs.submit import prepare

    spec = spec_of(roles={"worker": {"partition": "gpu"}})
    script = prepare(spec, _settings(tmp_path), "slurm", probe=False).script
    assert script.count("\n#SBATCH hetjob\n") == 2 and script.count("\nexec srun ") == 1
    with pytest.raises(ConfigError) as info:
        prepare(spec, _settings(tmp_path), "local", probe=False)
    assert info.value.problems[0].key == "roles" and "needs Slurm" in info.value.problems[0].message


def test_the_cli_renders_validates_and_explains_the_example(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hpc_tf.cli import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))

    config = str(REPO / "configs" / "parameter-server-hetjob.yaml")
    assert main(["validate", config]) == 0
    assert main(["render", config, "--backend", "slurm"]) == 0
    assert "#SBATCH hetjob" in capsys.readouterr().out
    assert main(["explain", config, "--nodelist", "c1,c2,g2,g1", "--job-id", "4711"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line[:1].isdigit()]
    expected = [("0", "c1", "chief"), ("1", "c2", "ps"), ("2", "g2", "worker"), ("2", "g1", "worker")]
    assert [(r[0], r[2], r[4]) for r in rows] == expected
    assert [r[7] for r in rows] == ["-", "none", "0", "0"]  # GPUs: none asked for the chief, none for a ps


@pytest.mark.parametrize("value", ["a b", "$(touch PWNED)", "x;y", 'say "hi"', "a#b", "`id`", "-x", "é😀", "\\"])
def test_hostile_role_values_stay_inert(value: str) -> None:
    """Each component's options go through the same quoting as one allocation's: one #SBATCH value each, and the
    launch line bash reads is exactly the planned argv."""
    import shlex
    import subprocess

    from hpc_tf.runs.render import render_script, sbatch_quote

    spec = spec_of(
        roles={"worker": {"partition": value, "additional_parameters": {"comment_x": value}}},
        launcher_args=[value],
    )
    plan = slurm_plan(spec, SlurmOptions(), f"/opt/py {value}/python", "")
    script = render_script(plan)
    assert subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True).returncode == 0
    assert f"#SBATCH --partition={sbatch_quote(value)}\n" in script
    assert f"#SBATCH --comment-x={sbatch_quote(value)}\n" in script
    (line,) = [line for line in script.splitlines() if line.startswith("exec ")]
    assert shlex.split(line)[1:] == plan.launch
