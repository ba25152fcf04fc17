"""Layout, TF_CONFIG, ports and GPU binding: pure functions over plain values and env dicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpc_tf.config.loading import validate
from hpc_tf.config.targets import Target
from hpc_tf.core.records import JobRecord
from hpc_tf.core.tfcluster import (
    Slot,
    bind_gpus,
    block_tasks_per_node,
    expand_port_range,
    job_port_base,
    ports_for,
    roles,
    task_slots,
    tf_config,
)
from hpc_tf.job.context import TaskContext, TaskSetupError
from hpc_tf.job.runtime import job_slots, my_slot, task_environment
from hpc_tf.rundir import RunDir
from hpc_tf.runs.explain import explain_rows

from .conftest import make_project


@pytest.mark.parametrize(
    "backend, ntasks, ps, expected",
    [
        ("ps", 4, 1, [("chief", 0), ("ps", 0), ("worker", 0), ("worker", 1)]),
        ("ps", 5, 2, [("chief", 0), ("ps", 0), ("ps", 1), ("worker", 0), ("worker", 1)]),
        ("multiworker", 3, 0, [("worker", 0), ("worker", 1), ("worker", 2)]),
        ("mpi", 2, 0, [("worker", 0), ("worker", 1)]),
    ],
)
def test_roles_in_rank_order(backend: str, ntasks: int, ps: int, expected: list) -> None:
    assert roles(backend, ntasks, ps) == expected


def test_layout_keeps_slurm_node_order_and_builds_the_seed_shape() -> None:
    slots = task_slots("ps", ["n9", "n10"], [2, 2], 1, job_id=7)
    assert [(s.node, s.local_rank, s.role, s.index) for s in slots] == [
        ("n9", 0, "chief", 0),
        ("n9", 1, "ps", 0),
        ("n10", 0, "worker", 0),
        ("n10", 1, "worker", 1),
    ]
    base = job_port_base(7, 4)
    config = tf_config(slots, 2)
    assert config == {
        "cluster": {
            "chief": [f"n9:{base}"],
            "ps": [f"n9:{base + 1}"],
            "worker": [f"n10:{base + 2}", f"n10:{base + 3}"],
        },
        "task": {"type": "worker", "index": 0},
        "environment": "cloud",
    }


def test_ports_per_job_are_disjoint_for_neighbouring_job_ids() -> None:
    blocks = [set(ports_for([("n", 0)] * 40, job_id, None)) for job_id in range(1000, 1300)]
    for a, b in zip(blocks, blocks[1:]):
        assert not a & b
    assert all(20000 <= p < 60000 for block in blocks for p in block)
    big = ports_for([("n", 0)] * 100, 5, None)
    assert len(set(big)) == 100


def test_reserved_ports_are_indexed_by_local_rank() -> None:
    placement = [("n1", 0), ("n1", 1), ("n2", 0), ("n2", 1)]
    assert ports_for(placement, 1, "12000-12001") == [12000, 12001, 12000, 12001]
    assert expand_port_range("12000-12002,12010") == [12000, 12001, 12002, 12010]
    with pytest.raises(ValueError, match="has 1 ports; a node runs 2 tasks"):
        ports_for(placement, 1, "12000")
    with pytest.raises(ValueError, match="malformed port range"):
        expand_port_range("12a")


def test_evaluator_takes_the_last_rank_and_stays_out_of_the_cluster() -> None:
    slots = task_slots("ps", ["n1", "n2", "n3"], [2, 2, 1], 1, job_id=3, evaluator=True)
    assert [(s.role, s.index) for s in slots] == [
        ("chief", 0),
        ("ps", 0),
        ("worker", 0),
        ("worker", 1),
        ("evaluator", 0),
    ]
    config = tf_config(slots, 4)
    assert "evaluator" not in config["cluster"] and config["task"] == {"type": "evaluator", "index": 0}
    assert slots[-1].port is None


@pytest.mark.parametrize(
    "visible, role, local, use_gpu, expected",
    [
        ("0,1", "worker", 1, True, "1"),  # bind by local rank
        ("3", "worker", 1, True, "3"),  # Slurm already gave this task exactly one GPU: keep it
        ("0,1", "ps", 0, True, ""),  # parameter servers see no GPU
        ("0,1", "ps", 0, False, ""),
        ("0,1", "worker", 0, False, None),  # no GPU asked for: leave Slurm's setting alone
        (None, "worker", 0, True, None),  # no GPU visible: nothing to bind
    ],
)
def test_gpu_binding(visible: str | None, role: str, local: int, use_gpu: bool, expected: str | None) -> None:
    assert bind_gpus(visible, Slot(0, "n1", local, role, 0), use_gpu) == expected


def test_gpu_binding_never_raises_index_error() -> None:
    with pytest.raises(ValueError, match="local rank 2 but only 2 GPUs are visible"):
        bind_gpus("0,1", Slot(2, "n1", 2, "worker", 2), True)


@pytest.mark.parametrize(
    "ntasks, nodes, per_node, counts",
    [(4, 3, 2, [2, 1, 1]), (5, 3, 2, [2, 2, 1]), (3, 2, 2, [2, 1]), (5, 4, 2, [2, 1, 1, 1]), (8, 4, 2, [2, 2, 2, 2])],
)
def test_block_tasks_per_node_matches_srun(ntasks: int, nodes: int, per_node: int, counts: list[int]) -> None:
    assert block_tasks_per_node(ntasks, nodes, per_node) == counts


PS_JOB = JobRecord(
    run_id="r",
    experiment="e",
    backend="slurm",
    python="python3",
    command=[],
    distributed_backend="ps",
    parameter_server_count=1,
    use_gpu=True,
)
SRUN_ENV = {
    "SLURM_JOB_ID": "42",
    "SLURM_PROCID": "3",
    "SLURM_LOCALID": "1",
    "SLURM_STEP_NUM_TASKS": "4",
    "SLURM_STEP_NODELIST": "n[9-10]",
    "SLURM_STEP_TASKS_PER_NODE": "2(x2)",
    "SLURM_JOB_NODELIST": "n[9-10]",
    "CUDA_VISIBLE_DEVICES": "0,1",
}


def test_task_context_from_srun_mpirun_and_local_environments() -> None:
    ctx = TaskContext.from_env(SRUN_ENV, "n10")
    assert (ctx.rank, ctx.local_rank, ctx.ntasks, ctx.nodes, ctx.tasks_per_node, ctx.job_id) == (
        3,
        1,
        4,
        ["n9", "n10"],
        [2, 2],
        42,
    )
    mpi = TaskContext.from_env(
        {
            **SRUN_ENV,
            "SLURM_PROCID": "0",
            "OMPI_COMM_WORLD_RANK": "5",
            "OMPI_COMM_WORLD_LOCAL_RANK": "1",
            "OMPI_COMM_WORLD_SIZE": "6",
        },
        "n10",
    )
    assert (mpi.rank, mpi.local_rank, mpi.ntasks) == (5, 1, 6)
    local = TaskContext.from_env({"HPC_TF_TASK_RANK": "2", "HPC_TF_NTASKS": "3", "HPC_TF_JOB_ID": "99"}, "laptop")
    assert (local.rank, local.nodes, local.tasks_per_node, local.job_id, local.local) == (
        2,
        ["localhost"],
        [3],
        99,
        True,
    )


@pytest.mark.parametrize("missing", ["SLURM_PROCID", "SLURM_LOCALID", "SLURM_STEP_TASKS_PER_NODE"])
def test_task_context_names_a_missing_slurm_variable(missing: str) -> None:
    env = {k: v for k, v in SRUN_ENV.items() if k != missing}
    with pytest.raises(TaskSetupError, match=missing):
        TaskContext.from_env(env, "n10")


def test_each_task_computes_its_own_tf_config_and_checks_its_host(tmp_path: Path) -> None:
    job = PS_JOB
    ctx = TaskContext.from_env(SRUN_ENV, "n10")
    slots = job_slots(job, ctx)
    slot = my_slot(ctx, slots)
    assert (slot.role, slot.index, slot.node) == ("worker", 1, "n10")
    env = task_environment(job, slots, slot, SRUN_ENV, RunDir(tmp_path))
    assert json.loads(env["TF_CONFIG"])["task"] == {"type": "worker", "index": 1}
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    with pytest.raises(TaskSetupError, match="rank 3 runs on 'n9' but Slurm's block layout puts it on 'n10'"):
        my_slot(TaskContext.from_env(SRUN_ENV, "n9"), slots)
    with pytest.raises(TaskSetupError, match="the step has 5 tasks"):
        my_slot(TaskContext.from_env({**SRUN_ENV, "SLURM_STEP_NUM_TASKS": "5"}, "n10"), slots)


def test_explain_rows_are_what_the_tasks_compute(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", "pass\n")
    spec = validate(
        {
            "source_directory": str(project),
            "entry_script": "train.py",
            "distributed_backend": "ps",
            "node_count": 2,
            "process_count_per_node": 2,
            "worker_count": 2,
            "use_gpu": True,
        },
        tmp_path,
    )
    rows = explain_rows(spec, Target("t", "slurm"), "n[9-10]", 42, None)
    for row in rows:
        env = {**SRUN_ENV, "SLURM_PROCID": str(row["rank"]), "SLURM_LOCALID": str(row["local_rank"])}
        ctx = TaskContext.from_env(env, row["node"])
        job = PS_JOB
        slots = job_slots(job, ctx)
        slot = my_slot(ctx, slots)
        computed = task_environment(job, slots, slot, env, RunDir(tmp_path))
        assert (slot.role, slot.index, slot.port, computed["CUDA_VISIBLE_DEVICES"]) == (
            row["role"],
            row["index"],
            row["port"],
            row["gpus"],
        )
    assert [r["runs"] for r in rows] == ["train.py", "TensorFlow server", "TensorFlow server", "TensorFlow server"]
