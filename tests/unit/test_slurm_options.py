"""The one translation of Slurm options (`core.slurm_options`), tied to the schema and shown on every job kind.

The schema tests fail when a `SlurmOptions` field has no place in the translation, so a new option cannot reach one
allocation and be silently dropped for a heterogeneous job. The table gives, for the same compute target, the
#SBATCH options of one allocation, of a heterogeneous job's component 0 and component N, of a job array, and the
submitit executor's `additional_parameters`: one translation, so they agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import msgspec
import pytest

from hpc_tf.config.loading import validate
from hpc_tf.config.targets import resolve_target
from hpc_tf.core.components import components
from hpc_tf.core.plan import executor_parameters, slurm_plan
from hpc_tf.core.records import ArrayChunk
from hpc_tf.core.role_checks import JOB_LEVEL_KEYS
from hpc_tf.core.slurm_options import COMPONENT_FIELDS, OPTION_FIELDS, WHOLE_JOB_FIELDS, level, slurm_options
from hpc_tf.core.spec import HETJOB_JOB_OPTIONS, EstimatorSpec, RoleOptions, SlurmOptions
from hpc_tf.sweeps.core.arrays import array_plan

REPO = Path(__file__).resolve().parent.parent.parent
PY = "/usr/bin/python3"
SIZE_FIELDS = ("node_count", "process_count_per_node")  # a role's size: its component's nodes and ntasks-per-node
# A value of each option, for the tests that set them all (a new field needs one here too).
SAMPLES: dict[str, Any] = {
    "time": "2:00:00",
    "partition": "cpu",
    "account": "ml",
    "qos": "high",
    "cpus_per_task": 4,
    "mem": "8G",
    "constraint": "skylake",
    "exclude": "n9",
    "reservation": "r1",
    "gpus_per_node": 2,
}


def fields(struct: type[msgspec.Struct]) -> set[str]:
    return set(struct.__struct_fields__)


# ---------------------------------------------------------------------------------------------- the schema
def test_every_slurm_option_is_translated() -> None:
    """Each field of SlurmOptions has its #SBATCH line (named, in OPTION_FIELDS' order) or is additional_parameters;
    none is left out: `time` and `gpus_per_node` are resolved from the config before (components())."""
    assert fields(SlurmOptions) == {*OPTION_FIELDS, "additional_parameters"}
    assert len(set(OPTION_FIELDS)) == len(OPTION_FIELDS)
    assert set(SAMPLES) == set(OPTION_FIELDS)


def test_every_option_has_slurms_level() -> None:
    """Whole-job: the options sbatch passes from component 0 to the others; the rest belong to each component."""
    assert {*WHOLE_JOB_FIELDS, *COMPONENT_FIELDS} == set(OPTION_FIELDS)
    assert WHOLE_JOB_FIELDS == ("time", "account", "qos", "exclude", "reservation")
    assert all(f.replace("_", "-") in HETJOB_JOB_OPTIONS for f in WHOLE_JOB_FIELDS)
    assert not any(f.replace("_", "-") in HETJOB_JOB_OPTIONS for f in COMPONENT_FIELDS)
    assert (level("mail_type"), level("gres")) == ("job", "component")  # additional_parameters' keys alike


def test_a_role_gives_exactly_the_component_options() -> None:
    """roles.<role> takes every per-component option and its size; the whole job's stay in compute_target."""
    assert fields(RoleOptions) == {*COMPONENT_FIELDS, "additional_parameters", *SIZE_FIELDS}
    assert JOB_LEVEL_KEYS == WHOLE_JOB_FIELDS


def test_every_option_reaches_one_allocation_and_each_component() -> None:
    """Every option set (whole-job ones in compute_target, per-component ones in a role) gives its line, where
    Slurm reads it: the whole job's in component 0 only, a role's own in its component only."""
    everything = SlurmOptions(**SAMPLES, additional_parameters={"mail_type": "END", "gres": "nvme:1"})
    one = slurm_options(everything, whole_job=True)
    assert [name for name, _ in one] == [f.replace("_", "-") for f in OPTION_FIELDS] + ["mail-type", "gres"]
    later = slurm_options(everything, whole_job=False)
    assert [name for name, _ in later] == [f.replace("_", "-") for f in COMPONENT_FIELDS] + ["gres"]

    own = {f: SAMPLES[f] if f != "partition" else "gpu" for f in COMPONENT_FIELDS if f != "gpus_per_node"}
    spec = het_spec(
        compute_target={f: SAMPLES[f] for f in WHOLE_JOB_FIELDS},
        roles={"worker": {**own, "gpus_per_node": 1}},
        use_gpu=True,
    )
    blocks = dict(slurm_plan(spec, resolve_target(spec, ()).options, PY, "").components)
    assert {f.replace("_", "-") for f in WHOLE_JOB_FIELDS} <= {name for name, _ in blocks["chief"]}
    assert {f.replace("_", "-") for f in COMPONENT_FIELDS} <= {name for name, _ in blocks["worker"]}
    assert not {f.replace("_", "-") for f in WHOLE_JOB_FIELDS} & {name for name, _ in blocks["worker"]}


# ---------------------------------------------------------------------------------------------- one table
TARGET: dict[str, Any] = {
    **{f: SAMPLES[f] for f in OPTION_FIELDS if f != "gpus_per_node"},
    "additional_parameters": {"mail_type": "END", "comment": "x", "hold": False},
}
WORKER = {"partition": "gpu", "mem": "32G", "gpus_per_node": 1, "additional_parameters": {"gres": "nvme:1"}}


def one_spec() -> EstimatorSpec:
    """2 nodes × 2 workers with GPUs (one per process: 2 per node), in one allocation."""
    keys = {"node_count": 2, "process_count_per_node": 2, "use_gpu": True, "compute_target": TARGET}
    base = {"source_directory": "multiworker", "entry_script": "train.py", "distributed_backend": "multiworker"}
    return validate({**base, **keys}, REPO / "configs")


def het_spec(**keys: Any) -> EstimatorSpec:
    base = {"source_directory": "parameter-server", "entry_script": "train.py", "distributed_backend": "ps"}
    return validate({**base, "worker_count": 2, **keys}, REPO / "configs")


def options_of(spec: EstimatorSpec) -> SlurmOptions:
    return resolve_target(spec, ()).options


def one_allocation() -> list[tuple[str, str | None]]:
    spec = one_spec()
    return slurm_plan(spec, options_of(spec), PY, "").directives


def component(index: int) -> list[tuple[str, str | None]]:
    spec = het_spec(compute_target=TARGET, roles={"worker": WORKER}, use_gpu=True)
    return slurm_plan(spec, options_of(spec), PY, "").components[index][1]


def array() -> list[tuple[str, str | None]]:
    spec = one_spec()
    return array_plan(spec, options_of(spec), PY, "", ArrayChunk(offset=0, count=10), 2).directives


def executor() -> list[tuple[str, str | None]]:
    """submitit's keywords as the #SBATCH lines they give (`_` → `-`, True a bare flag)."""
    spec = one_spec()
    params = executor_parameters(spec, options_of(spec))
    extra = [(k.replace("_", "-"), None if v is True else v) for k, v in params["additional_parameters"].items()]
    return [("job-name", params["job_name"]), ("nodes", str(params["nodes"])), *extra]


WHOLE_JOB = [("time", "2:00:00"), ("account", "ml"), ("qos", "high"), ("exclude", "n9"), ("reservation", "r1")]
HEADER = [("job-name", "default"), ("output", "logs/slurm-%j.out"), ("open-mode", "append")]
TABLE: list[tuple[str, Callable[[], list[tuple[str, str | None]]], list[tuple[str, str | None]]]] = [
    (
        "one-allocation",
        one_allocation,
        [
            *HEADER,
            *[("nodes", "2"), ("ntasks-per-node", "2"), ("no-requeue", None)],
            *[("time", "2:00:00"), ("partition", "cpu"), ("account", "ml"), ("qos", "high"), ("cpus-per-task", "4")],
            *[("mem", "8G"), ("constraint", "skylake"), ("exclude", "n9"), ("reservation", "r1")],
            *[("gpus-per-node", "2"), ("mail-type", "END"), ("comment", "x")],
        ],
    ),
    (
        "component-0",  # the chief: the whole job's options (as one allocation's), its own from compute_target
        lambda: component(0),
        [
            *HEADER,
            *[("nodes", "1"), ("ntasks-per-node", "1"), ("no-requeue", None)],
            *[("time", "2:00:00"), ("partition", "cpu"), ("account", "ml"), ("qos", "high"), ("cpus-per-task", "4")],
            *[("mem", "8G"), ("constraint", "skylake"), ("exclude", "n9"), ("reservation", "r1")],
            *[("mail-type", "END"), ("comment", "x")],
        ],
    ),
    (
        "component-N",  # the workers: their own options over compute_target's, none of the whole job's
        lambda: component(2),
        [
            *[("nodes", "2"), ("ntasks-per-node", "1")],
            *[("partition", "gpu"), ("cpus-per-task", "4"), ("mem", "32G"), ("constraint", "skylake")],
            *[("gpus-per-node", "1"), ("gres", "nvme:1")],
        ],
    ),
    (
        "array",  # one allocation's, with the array range and one batch log per task
        array,
        [
            *[("job-name", "default"), ("array", "0-9%2"), ("output", "logs/slurm-%A_%a.out"), ("open-mode", "append")],
            *[("nodes", "2"), ("ntasks-per-node", "2"), ("no-requeue", None)],
            *[("time", "2:00:00"), ("partition", "cpu"), ("account", "ml"), ("qos", "high"), ("cpus-per-task", "4")],
            *[("mem", "8G"), ("constraint", "skylake"), ("exclude", "n9"), ("reservation", "r1")],
            *[("gpus-per-node", "2"), ("mail-type", "END"), ("comment", "x")],
        ],
    ),
    (
        "executor",  # one allocation's but the log (submitit writes its own)
        executor,
        [
            *[("job-name", "default"), ("nodes", "2"), ("ntasks-per-node", "2"), ("no-requeue", None)],
            *[("time", "2:00:00"), ("partition", "cpu"), ("account", "ml"), ("qos", "high"), ("cpus-per-task", "4")],
            *[("mem", "8G"), ("constraint", "skylake"), ("exclude", "n9"), ("reservation", "r1")],
            *[("gpus-per-node", "2"), ("mail-type", "END"), ("comment", "x")],
        ],
    ),
]


@pytest.mark.parametrize(("kind", "plan", "expected"), TABLE, ids=[row[0] for row in TABLE])
def test_options_in_sbatch_options_out(
    kind: str, plan: Callable[[], list[tuple[str, str | None]]], expected: list[tuple[str, str | None]]
) -> None:
    assert plan() == expected


def test_the_table_agrees() -> None:
    """The kinds differ only where Slurm does: the log and the array, the size, whose options a block holds."""
    one = one_allocation()
    assert [("output", "logs/slurm-%j.out") if d[0] == "output" else d for d in array() if d[0] != "array"] == one
    assert executor() == [d for d in one if d[0] not in ("output", "open-mode")]
    first, later = component(0), component(2)
    assert [d for d in one if d[0] in dict(WHOLE_JOB)] == WHOLE_JOB == [d for d in first if d[0] in dict(WHOLE_JOB)]
    assert not dict(later).keys() & dict(WHOLE_JOB).keys()


def test_one_allocation_is_a_job_of_one_component() -> None:
    spec = one_spec()
    (only,) = components(spec, options_of(spec))
    assert (only.record.index, only.record.node_count, only.record.tasks_per_node) == (0, 2, 2)
    assert only.options.gpus_per_node == 2 and only.spread_ntasks is None
