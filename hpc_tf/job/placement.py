"""Where each task of the job belongs (its slot: node, role, index, port) and the check that it runs there.

Every task derives the same list of slots from what Slurm tells it. One allocation: the step's node list in
Slurm's order, tasks in blocks (`core.tfcluster`). A heterogeneous job (job.json `components`): each component's own
node list (`SLURM_JOB_NODELIST_HET_GROUP_<n>`), component by component (`core.components.het_slots`); with one step
per component a task's SLURM_PROCID counts within its component, so its global rank is the component's first
rank plus it. A task on another node than its slot's would get a wrong TF_CONFIG: it refuses to start.
"""

from __future__ import annotations

import socket

import msgspec

from ..core.components import het_slots
from ..core.records import ComponentRecord, JobRecord
from ..core.tfcluster import Slot, task_slots
from .context import TaskContext, TaskSetupError


def job_slots(job: JobRecord, ctx: TaskContext) -> list[Slot]:
    """Every task's slot, as this task sees the step (each task derives the same list)."""
    if job.distributed_backend in (None, "mpi"):
        return []
    if job.components:
        try:
            return het_slots(job.components, ctx.het_nodes, ctx.job_id, ctx.resv_ports)
        except ValueError as exc:
            raise TaskSetupError(f"the heterogeneous job's components do not match job.json: {exc}") from None
    return task_slots(
        job.distributed_backend,
        ctx.nodes,
        ctx.tasks_per_node,
        job.parameter_server_count,
        ctx.job_id,
        ctx.resv_ports,
        job.evaluator,
    )


def global_context(job: JobRecord, ctx: TaskContext) -> TaskContext:
    """A heterogeneous job's task as the whole job sees it: global rank and task count, the components' nodes.

    One step across the components already numbers tasks globally and lists every node; one step per component
    (`het_group` set) numbers them within the component. Either way the components must be job.json's."""
    comps = job.components
    if not comps:
        return ctx
    if not ctx.het_nodes:
        raise TaskSetupError(
            f"job.json describes a heterogeneous job but its components' node lists cannot be read ({ctx.het_problem})"
            ": was it submitted without its #SBATCH hetjob lines?"
        )
    if len(ctx.het_nodes) != len(comps):
        raise TaskSetupError(
            f"Slurm gave {len(ctx.het_nodes)} components, job.json has {len(comps)} "
            f"({', '.join(c.role for c in comps)})"
        )
    total = sum(c.ntasks for c in comps)
    nodes = [node for group in ctx.het_nodes for node in group]
    per_node = [c.tasks_per_node for c in comps for _ in range(c.node_count)]
    if ctx.het_group is None:
        if ctx.ntasks != total:
            raise TaskSetupError(f"the step has {ctx.ntasks} tasks but the components have {total}")
        return msgspec.structs.replace(ctx, nodes=nodes, tasks_per_node=per_node)
    comp = _component(comps, ctx.het_group)
    if ctx.ntasks != comp.ntasks or ctx.rank >= comp.ntasks:
        raise TaskSetupError(
            f"component {comp.index} ({comp.role}) plans {comp.ntasks} tasks but its step has {ctx.ntasks} "
            f"(this task's SLURM_PROCID {ctx.rank})"
        )
    return msgspec.structs.replace(
        ctx, rank=comp.first_rank + ctx.rank, ntasks=total, nodes=nodes, tasks_per_node=per_node
    )


def global_rank(job: JobRecord, rank: int, group: int | None) -> int:
    """A task's rank in the whole job as far as it can be told, to name a task that cannot start (with one step
    per component, `group` set, SLURM_PROCID counts within the component)."""
    if group is not None and group < len(job.components):
        return job.components[group].first_rank + rank
    return rank


def _component(comps: list[ComponentRecord], group: int) -> ComponentRecord:
    if group >= len(comps):
        raise TaskSetupError(f"HPC_TF_HET_GROUP is {group} but the job has {len(comps)} components")
    return comps[group]


def my_slot(ctx: TaskContext, slots: list[Slot], comps: list[ComponentRecord] | None = None) -> Slot:
    """This task's slot; checks that the launcher put it where the layout says (in a heterogeneous job, on a node
    of the component its rank falls in) and that its port is free."""
    if not slots:  # one process, or an MPI rank: no TF cluster to place
        return Slot(ctx.rank, ctx.hostname, ctx.local_rank, "worker", ctx.rank)
    if len(slots) != ctx.ntasks or ctx.rank >= len(slots):
        raise TaskSetupError(
            f"the step has {ctx.ntasks} tasks but its node list {ctx.nodes} and tasks per node "
            f"{ctx.tasks_per_node} give {len(slots)}: was the job started with a different layout?"
        )
    slot = slots[ctx.rank]
    if not ctx.local and not _same_host(ctx.hostname, slot.node):
        where = _where(ctx, comps or [], slot)
        raise TaskSetupError(
            f"rank {ctx.rank} runs on {ctx.hostname!r} but {where} puts it on "
            f"{slot.node!r}: TF_CONFIG would be wrong (was --distribution changed?)"
        )
    if slot.port is not None and not port_is_free(slot.port):
        raise TaskSetupError(
            f"port {slot.port} (rank {slot.rank}, {slot.role} {slot.index}) is already in use on "
            f"{ctx.hostname}: another program holds this job's port block; resubmit, or ask the site "
            f"to reserve ports for steps (MpiParams=ports=..., SLURM_STEP_RESV_PORTS)"
        )
    return slot


def _where(ctx: TaskContext, comps: list[ComponentRecord], slot: Slot) -> str:
    for c in comps:
        if c.first_rank <= slot.rank < c.first_rank + c.ntasks:
            return f"its component {c.index} ({c.role}, nodes {','.join(ctx.het_nodes[c.index])})"
    return "Slurm's block layout"


def port_is_free(port: int) -> bool:
    """Whether a TCP port can be bound on all interfaces here (TIME_WAIT leftovers don't count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("", port))
        except OSError:
            return False
    return True


def _same_host(hostname: str, node: str) -> bool:
    return hostname == node or hostname.split(".")[0] == node.split(".")[0]
