"""Per-role placement (issue 12), the launch side: job.json's components, each task's global place from the
recorded environment of both launch modes (one step across the components, one step per component), the check
that a task runs on its component's node, the per-component supervisor, and what a cluster's config means."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hpc_tf.config.loading import validate
from hpc_tf.core.components import components
from hpc_tf.core.lifecycle import shell_code as exit_code
from hpc_tf.core.plan import slurm_plan
from hpc_tf.core.records import JobRecord
from hpc_tf.core.role_checks import site_hetjob
from hpc_tf.core.spec import SlurmOptions
from hpc_tf.job.context import TaskContext, TaskSetupError
from hpc_tf.job.hetsteps import run_steps, split_steps, step_environment
from hpc_tf.job.placement import global_context, job_slots, my_slot
from tests.unit.test_hetjob import BASE as PS_BASE
from tests.unit.test_hetjob import PY, REPO

BASE: dict[str, Any] = {**PS_BASE, "roles": {"worker": {"partition": "gpu"}}}
SPEC = validate(BASE, REPO / "configs")
COMPS = [c.record for c in components(SPEC, SlurmOptions())]
JOB = JobRecord(
    run_id="r",
    experiment="e",
    backend="slurm",
    python=PY,
    command=[],
    distributed_backend="ps",
    parameter_server_count=1,
    ntasks=4,
    components=COMPS,
)
HET = {  # recorded in a task of a 3-component job on the dev cluster (chief n1, ps n2, workers n3 n4)
    "SLURM_JOB_ID": "148",
    "SLURM_HET_SIZE": "3",
    "SLURM_JOB_NODELIST_HET_GROUP_0": "n1",
    "SLURM_JOB_NODELIST_HET_GROUP_1": "n2",
    "SLURM_JOB_NODELIST_HET_GROUP_2": "n[3-4]",
    "SLURM_JOB_NODELIST": "n[1-4]",
    "SLURM_LOCALID": "0",
}
ONE_STEP = {**HET, "SLURM_STEP_NODELIST": "n[1-4]", "SLURM_STEP_TASKS_PER_NODE": "1(x4)", "SLURM_STEP_NUM_TASKS": "4"}
PER_COMPONENT = {  # the workers' own step: SLURM_PROCID within the component, the step's nodes its own
    **HET,
    "SLURM_JOB_ID": "150",
    "SLURM_STEP_NODELIST": "n[3-4]",
    "SLURM_STEP_TASKS_PER_NODE": "1(x2)",
    "SLURM_STEP_NUM_TASKS": "2",
    "HPC_TF_HET_GROUP": "2",
    "HPC_TF_HET_LEADER": "148",
}


def test_job_json_has_the_components_in_rank_order() -> None:
    assert [(c.index, c.role, c.node_count, c.tasks_per_node, c.first_rank) for c in COMPS] == [
        (0, "chief", 1, 1, 0),
        (1, "ps", 1, 1, 1),
        (2, "worker", 2, 1, 2),
    ]


@pytest.mark.parametrize(
    ("env", "procid", "host", "rank", "role", "index"),
    [
        (ONE_STEP, "0", "n1", 0, "chief", 0),
        (ONE_STEP, "1", "n2", 1, "ps", 0),
        (ONE_STEP, "3", "n4", 3, "worker", 1),
        (PER_COMPONENT, "0", "n3", 2, "worker", 0),
        (PER_COMPONENT, "1", "n4", 3, "worker", 1),
        (
            {
                **PER_COMPONENT,
                "HPC_TF_HET_GROUP": "0",
                "SLURM_STEP_NODELIST": "n1",
                "SLURM_STEP_NUM_TASKS": "1",
                "SLURM_STEP_TASKS_PER_NODE": "1",
            },
            "0",
            "n1",
            0,
            "chief",
            0,
        ),
    ],
)
def test_each_task_finds_its_global_slot(env: dict, procid: str, host: str, rank: int, role: str, index: int) -> None:
    ctx = global_context(JOB, TaskContext.from_env({**env, "SLURM_PROCID": procid}, host))
    slots = job_slots(JOB, ctx)
    slot = my_slot(ctx, slots, JOB.components)
    assert (ctx.rank, ctx.ntasks, slot.role, slot.index, slot.node) == (rank, 4, role, index, host)
    assert ctx.job_id == 148  # the leader's, in every component: one port block, requeue of the whole job
    # both launch modes give the same slots (the same TF_CONFIG)
    one = global_context(JOB, TaskContext.from_env({**ONE_STEP, "SLURM_PROCID": "0"}, "n1"))
    assert job_slots(JOB, one) == slots


@pytest.mark.parametrize(
    ("env", "procid", "host", "words"),
    [
        (ONE_STEP, "2", "n1", "its component 2 (worker, nodes n3,n4) puts it on 'n3'"),
        (PER_COMPONENT, "0", "n2", "its component 2 (worker, nodes n3,n4) puts it on 'n3'"),
        ({**ONE_STEP, "SLURM_STEP_NUM_TASKS": "3"}, "0", "n1", "the step has 3 tasks but the components have 4"),
        ({**PER_COMPONENT, "HPC_TF_HET_GROUP": "7"}, "0", "n3", "HPC_TF_HET_GROUP is 7 but the job has 3"),
        ({**PER_COMPONENT, "SLURM_STEP_NUM_TASKS": "3"}, "0", "n3", "component 2 (worker) plans 2 tasks"),
        ({k: v for k, v in ONE_STEP.items() if "HET" not in k}, "0", "n1", "SLURM_HET_SIZE is not set"),
        ({**ONE_STEP, "SLURM_HET_SIZE": "2"}, "0", "n1", "Slurm gave 2 components, job.json has 3"),
    ],
)
def test_a_task_in_the_wrong_place_refuses_to_start(env: dict, procid: str, host: str, words: str) -> None:
    with pytest.raises(TaskSetupError) as info:
        ctx = global_context(JOB, TaskContext.from_env({**env, "SLURM_PROCID": procid}, host))
        my_slot(ctx, job_slots(JOB, ctx), JOB.components)
    assert words in str(info.value)


def test_an_old_job_json_without_components_reads_as_one_allocation() -> None:
    import msgspec

    old = msgspec.json.decode(
        b'{"schema": 3, "run_id": "r", "experiment": "e", "backend": "slurm", "python": "p", "command": []}',
        type=JobRecord,
    )
    assert (old.components, old.het_steps) == ([], "one")


# ---------------------------------------------------------------------------------------------- one step per component
def test_per_component_script_starts_one_step_each() -> None:
    argv = slurm_plan(SPEC, SlurmOptions(), PY, "", het_steps="per_component").launch
    assert argv[:4] == [PY, "-u", "-m", "hpc_tf.job.hetsteps"]
    steps = split_steps(argv[4:])
    assert [s[:4] for s in steps] == [
        ["srun", "--unbuffered", "--kill-on-bad-exit=1", f"--het-group={i}"] for i in range(3)
    ]
    assert all(s[-5:] == [PY, "-u", "-m", "hpc_tf.job", "."] for s in steps)
    # each step is the one-step launch's component: the same options, the same runtime
    one_step = slurm_plan(SPEC, SlurmOptions(), PY, "").launch
    assert [s[3:] for s in steps] == split_steps(one_step[3:])


@pytest.mark.parametrize("argv", [[":"], ["a", ":"], [":", "b"], ["a", ":", ":", "b"]])
def test_an_empty_step_is_refused(argv: list[str]) -> None:
    with pytest.raises(ValueError, match="empty command"):
        split_steps(argv)


def test_each_step_knows_its_component_and_the_leader() -> None:
    env = step_environment({"SLURM_JOB_ID": "148", "PATH": "/bin"}, 2)
    assert env == {"SLURM_JOB_ID": "148", "PATH": "/bin", "HPC_TF_HET_GROUP": "2", "HPC_TF_HET_LEADER": "148"}


@pytest.mark.parametrize(("returncode", "code"), [(0, 0), (3, 3), (-15, 143), (-9, 137)])
def test_exit_codes_as_a_shell_sees_them(returncode: int, code: int) -> None:
    assert exit_code(returncode) == code


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_the_first_failing_step_ends_the_job_at_once(tmp_path: Path) -> None:
    """Real processes: a 'server' that would run for a minute, a 'worker' that fails after 0.3 s."""
    started = time.monotonic()
    code = run_steps(
        [_py("import time; time.sleep(60)"), _py("import time, sys; time.sleep(0.3); sys.exit(3)")],
        {"PATH": "/usr/bin:/bin"},
        poll=0.05,
    )
    assert code == 3 and time.monotonic() - started < 10


def test_every_step_ending_zero_ends_the_job_zero(tmp_path: Path) -> None:
    marker = tmp_path / "seen"
    code = run_steps(
        [
            _py("import time; time.sleep(0.3)"),
            _py(f"import os; open({str(marker)!r}, 'w').write(os.environ['HPC_TF_HET_GROUP'])"),
        ],
        {"PATH": "/usr/bin:/bin", "SLURM_JOB_ID": "9"},
        poll=0.05,
    )
    assert code == 0 and marker.read_text() == "1"


# ---------------------------------------------------------------------------------------------- the cluster's config
@pytest.mark.parametrize(
    ("config", "steps", "refused", "noted"),
    [
        ({"SchedulerType": "sched/backfill", "SchedulerParameters": "(null)"}, "one", False, False),
        (
            {"SchedulerType": "sched/backfill", "SchedulerParameters": "bf_interval=1,max_array_tasks=5"},
            "one",
            False,
            False,
        ),
        (
            {"SchedulerType": "sched/backfill", "SchedulerParameters": "bf_interval=1,disable_hetjob_steps"},
            "per_component",
            False,
            True,
        ),
        ({"SchedulerType": "sched/builtin"}, "one", True, False),
        ({}, "one", False, False),  # not printed: nothing to say
    ],
)
def test_what_a_cluster_config_means(config: dict, steps: str, refused: bool, noted: bool) -> None:
    got_steps, refusal, notes = site_hetjob(config)
    assert (got_steps, refusal is not None, bool(notes)) == (steps, refused, noted)
    if refused:
        assert "sched/builtin" in (refusal or "") and "sched/backfill" in (refusal or "")


def test_launcher_args_cannot_hold_the_step_separator() -> None:
    from hpc_tf.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        validate({**BASE, "launcher_args": ["--x", ":"]}, REPO / "configs")
    assert [p.key for p in info.value.problems] == ["launcher_args[1]"]


@pytest.mark.parametrize(
    ("env", "procid", "rank"), [(ONE_STEP, "3", 3), (PER_COMPONENT, "1", 3), (PER_COMPONENT, "0", 2)]
)
def test_a_task_that_cannot_start_is_named_by_its_global_rank(env: dict, procid: str, rank: int) -> None:
    from hpc_tf.job.placement import global_rank

    ctx = TaskContext.from_env({**env, "SLURM_PROCID": procid}, "elsewhere")
    assert global_rank(JOB, ctx.rank, ctx.het_group) == rank


def test_a_one_allocation_job_ignores_a_stale_het_size() -> None:
    """sbatch from inside a heterogeneous allocation may pass SLURM_HET_SIZE on: only a job with components reads it."""
    env = {"SLURM_JOB_ID": "9", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_STEP_NUM_TASKS": "1",
           "SLURM_STEP_NODELIST": "n1", "SLURM_STEP_TASKS_PER_NODE": "1", "SLURM_HET_SIZE": "2"}  # fmt: skip
    ctx = TaskContext.from_env(env, "n1")
    assert ctx.het_nodes == [] and "SLURM_JOB_NODELIST_HET_GROUP_0 is not set" in ctx.het_problem
    flat = JobRecord(run_id="r", experiment="e", backend="slurm", python=PY, command=[])
    assert global_context(flat, ctx) == ctx
    with pytest.raises(TaskSetupError, match="HET_GROUP_0 is not set"):
        global_context(JOB, ctx)
