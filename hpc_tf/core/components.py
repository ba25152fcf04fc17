"""A Slurm job's components: the whole job in one allocation, or one per role (`roles:`, issue 12).

Every Slurm job is planned as components (TorchX's model: each role a het group), each rendered as one #SBATCH block
by `core.plan.slurm_plan`; one allocation is a job of one component. With roles, a 'ps' job has one component per
role, in the order chief, ps, worker, evaluator (the roles the job has; a role that `roles` does not list takes
compute_target's options, one task per node). The batch script runs on the first node of component 0, the chief's
(TF2's coordinator). Ranks are global across the components (one `srun a : b` step has "non-overlapping task IDs",
Slurm 22.05 heterogeneous_jobs.html) and follow the component order, so roles, indexes, ports and TF_CONFIG are those
of the same job in one allocation: only the nodes differ.

Options (`core.slurm_options`): the whole job's (time, account, qos, exclude, reservation, requeue, signal, job-name,
output, …: the ones sbatch passes from one component to the next) are rendered once, in component 0, from
compute_target. Each component gets its own nodes, tasks per node, partition, cpus-per-task, constraint and
gpus-per-node (reset for every component), and mem (propagated as well: `role_checks` refuses a component that would
silently inherit the one before's); compute_target's are a role's defaults, except GPUs.

In the job: each component's node list (`SLURM_JOB_NODELIST_HET_GROUP_<n>`) and every task's slot from it. Where the
site disables steps across components (SchedulerParameters=disable_hetjob_steps), `hpc_tf.job.hetsteps` starts one
step per component and tells each step's tasks their component (their SLURM_PROCID is then the rank within it).
Pure: node lists are passed in.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import msgspec

from .hostlist import expand
from .records import ComponentRecord
from .slurm_options import COMPONENT_FIELDS, slurm_time
from .spec import ROLE_NAMES, EstimatorSpec, RoleOptions, SlurmOptions
from .tfcluster import Slot, node_of_ranks, ports_for

# Set in every task of a heterogeneous job (srun(1), "SLURM_*_HET_GROUP_#"); read by the in-job side.
HET_SIZE = "SLURM_HET_SIZE"
HET_NODELIST = "SLURM_JOB_NODELIST_HET_GROUP_{group}"
STEP_SEPARATOR = ":"  # between the components' commands, as srun's own (launcher_args may not contain it)
# a role's own options over compute_target's; GPUs never come from compute_target (ps get none)
ROLE_DEFAULTS = tuple(field for field in COMPONENT_FIELDS if field != "gpus_per_node")


class Component(msgspec.Struct, frozen=True):
    """One component of a Slurm job: its tasks (what job.json keeps of a heterogeneous job's) and its options."""

    record: ComponentRecord  # one allocation: role "" (every role), first rank 0
    # its #SBATCH options: compute_target's, a role's own over them, with the job's time and this component's GPUs;
    # only component 0's block gives the whole job's (core.slurm_options.level)
    options: SlurmOptions
    spread_ntasks: int | None = None  # one allocation of 'ps' without process_count_per_node: Slurm spreads the tasks


def role_tasks(spec: EstimatorSpec, role: str) -> int:
    """How many tasks a role runs: 1 chief, parameter_server_count ps, worker_count workers, 1 evaluator if asked."""
    counts = {"chief": 1, "ps": spec.parameter_server_count, "worker": spec.worker_count, "evaluator": spec.evaluator}
    return int(counts[role])


def role_shape(spec: EstimatorSpec, role: str) -> tuple[int, int]:
    """(nodes, tasks per node) of a role's component: as the role says, else one task per node."""
    own = spec.roles.get(role) or RoleOptions()
    per_node = own.process_count_per_node or 1
    return own.node_count or max(1, role_tasks(spec, role) // per_node), per_node


def components(spec: EstimatorSpec, target: SlurmOptions) -> list[Component]:
    """The job's components, in rank order: one for one allocation, else one per role; validation has checked each
    role's size against its count. max_run_duration_seconds wins over compute_target's time."""
    time = slurm_time(spec.max_run_duration_seconds) if spec.max_run_duration_seconds is not None else target.time
    base = msgspec.structs.replace(target, time=time, gpus_per_node=None)
    if not spec.roles:  # GPUs: the target's gpus_per_node, else one per process; none without use_gpu
        gpus = (target.gpus_per_node or spec.most_tasks_per_node) if spec.use_gpu else 0
        record = ComponentRecord(
            index=0, role="", node_count=spec.node_count, tasks_per_node=spec.most_tasks_per_node, first_rank=0
        )
        options = msgspec.structs.replace(base, gpus_per_node=gpus or None)
        return [Component(record, options, spec.ntasks if spec.spread_tasks else None)]
    out: list[Component] = []
    rank = 0
    for role in ROLE_NAMES:
        if not role_tasks(spec, role):
            continue
        own = spec.roles.get(role) or RoleOptions()
        nodes, per_node = role_shape(spec, role)
        record = ComponentRecord(index=len(out), role=role, node_count=nodes, tasks_per_node=per_node, first_rank=rank)
        out.append(Component(record, _role_options(spec, base, role, own, first=not out)))
        rank += nodes * per_node
    return out


def _role_options(spec: EstimatorSpec, base: SlurmOptions, role: str, own: RoleOptions, first: bool) -> SlurmOptions:
    """A role's component options: its own over compute_target's; compute_target's additional_parameters are the
    whole job's (`role_checks.check_target`), given in component 0 with the chief's own."""
    mine = {field: getattr(own, field) for field in ROLE_DEFAULTS if getattr(own, field) is not None}
    gpus = own.gpus_per_node if spec.use_gpu and role != "ps" else None  # ps never: they hold variables
    params = {**base.additional_parameters, **own.additional_parameters} if first else own.additional_parameters
    return msgspec.structs.replace(base, **mine, gpus_per_node=gpus or None, additional_parameters=params)


def het_nodelists(env: Mapping[str, str]) -> list[list[str]]:
    """Each component's nodes in Slurm's order (never sorted), from a task's environment (passed in).

    Environment variables read: SLURM_HET_SIZE, SLURM_JOB_NODELIST_HET_GROUP_<n> for n < SLURM_HET_SIZE."""
    size = env.get(HET_SIZE, "")
    if not size.isdigit() or int(size) < 1:
        raise ValueError(f"{HET_SIZE} is {size or 'not set'}: is this a task of a heterogeneous job?")
    lists = []
    for group in range(int(size)):
        name = HET_NODELIST.format(group=group)
        if not env.get(name):
            raise ValueError(f"{name} is not set but {HET_SIZE}={size}")
        lists.append(expand(env[name]))
    return lists


def het_slots(
    comps: Sequence[ComponentRecord],
    nodelists: Sequence[Sequence[str]],
    job_id: int,
    resv_ports: str | None = None,
) -> list[Slot]:
    """Every task's slot: component by component, each node's tasks in a block (as in one allocation), ports from
    the job id (the leader's, SLURM_JOB_ID in every component) and the global rank; an evaluator has no port."""
    if len(nodelists) != len(comps):
        raise ValueError(
            f"{len(nodelists)} node lists for {len(comps)} components ({', '.join(c.role for c in comps)})"
        )
    placement: list[tuple[str, int]] = []
    assigned: list[tuple[str, int]] = []
    for c, nodes in zip(comps, nodelists, strict=True):
        if len(nodes) != c.node_count:
            raise ValueError(
                f"component {c.index} ({c.role}) has {len(nodes)} nodes ({','.join(nodes)}) but {c.node_count} planned"
            )
        placement += node_of_ranks(nodes, [c.tasks_per_node] * len(nodes))
        assigned += [(c.role, index) for index in range(c.ntasks)]
    ports = ports_for(placement, job_id, resv_ports)
    return [
        Slot(rank, node, local, role, index, None if role == "evaluator" else port)
        for rank, ((node, local), (role, index), port) in enumerate(zip(placement, assigned, ports, strict=True))
    ]
