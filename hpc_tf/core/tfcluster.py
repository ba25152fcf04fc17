"""Pure derivation of a distributed job's layout: which task gets which role, host, port and GPUs, and TF_CONFIG.

Placement (documented in the README): tasks get ranks in Slurm's order (block distribution: the
first node's tasks first, hosts never sorted as strings). For 'ps', rank 0 is the chief (the TF2
coordinator), the next `parameter_server_count` ranks are the ps, the rest are workers; so with one
task per node the chief, the ps and the workers are on different nodes, and with several tasks per
node the ps shares the chief's node. For 'multiworker' and 'mpi' every rank is a worker (rank 0 is
worker 0, the chief of MultiWorkerMirroredStrategy).

Ports: a site that reserves ports for steps (`SLURM_STEP_RESV_PORTS`) gives each node a range; a
task takes the entry at its local rank. Otherwise each job gets its own block of ports derived from
its job id (so two jobs on the same nodes never collide) and each task takes `base + rank` (ranks,
not local ranks: nodes that share an address — containers, the dev cluster — still don't collide).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import msgspec

PORT_LOW, PORT_HIGH = 20000, 60000
PORT_BLOCK = 64
MAX_TF_TASKS = PORT_HIGH - PORT_LOW  # one port each, from the job's block (a site's reserved ports aside)


class Slot(msgspec.Struct, frozen=True):
    """One task of a job: where it runs and what it is."""

    rank: int
    node: str
    local_rank: int
    role: str  # chief | ps | worker
    index: int
    port: int | None = None


def roles(backend: str | None, ntasks: int, ps_count: int = 0, evaluator: bool = False) -> list[tuple[str, int]]:
    """The (role, index) of each rank, in rank order; an evaluator takes the last rank."""
    if backend == "ps":
        out = [("chief", 0)] + [("ps", i) for i in range(ps_count)]
        out += [("worker", i) for i in range(ntasks - len(out) - int(evaluator))]
        return out + ([("evaluator", 0)] if evaluator else [])
    return [("worker", i) for i in range(ntasks)]


def node_of_ranks(nodes: Sequence[str], tasks_per_node: Sequence[int]) -> list[tuple[str, int]]:
    """(node, local rank) of each rank under Slurm's block distribution."""
    if len(nodes) != len(tasks_per_node):
        raise ValueError(f"{len(nodes)} nodes but tasks-per-node has {len(tasks_per_node)} entries")
    return [(node, local) for node, count in zip(nodes, tasks_per_node, strict=True) for local in range(count)]


def job_port_base(job_id: int, ntasks: int) -> int:
    """A per-job block of ports: consecutive job ids get disjoint blocks."""
    if ntasks > MAX_TF_TASKS:
        raise ValueError(
            f"{ntasks} tasks need {ntasks} ports, more than the {MAX_TF_TASKS} of {PORT_LOW}-{PORT_HIGH - 1}: "
            "ask the site to reserve ports for steps (MpiParams=ports=..., SLURM_STEP_RESV_PORTS)"
        )
    block = PORT_BLOCK * max(1, math.ceil(ntasks / PORT_BLOCK))  # 40,000 is a whole number of blocks
    blocks = (PORT_HIGH - PORT_LOW) // block
    return PORT_LOW + (job_id % blocks) * block


def expand_port_range(text: str) -> list[int]:
    """`12000-12003,12010` → ports (the form of SLURM_STEP_RESV_PORTS)."""
    ports: list[int] = []
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise ValueError(f"malformed port range {part!r} in {text!r}")
        ports += list(range(int(low), int(high or low) + 1))
    return ports


def ports_for(placement: Sequence[tuple[str, int]], job_id: int, resv_ports: str | None) -> list[int]:
    """The port of each rank (see the module docstring)."""
    if resv_ports:
        reserved = expand_port_range(resv_ports)
        needed = max(local for _, local in placement) + 1
        if len(reserved) < needed:
            raise ValueError(
                f"SLURM_STEP_RESV_PORTS={resv_ports} has {len(reserved)} ports; a node runs {needed} tasks"
            )
        return [reserved[local] for _, local in placement]
    base = job_port_base(job_id, len(placement))
    return [base + rank for rank in range(len(placement))]


def task_slots(
    backend: str | None,
    nodes: Sequence[str],
    tasks_per_node: Sequence[int],
    ps_count: int,
    job_id: int,
    resv_ports: str | None = None,
    evaluator: bool = False,
) -> list[Slot]:
    """Every task's slot, from the step's node list and tasks per node."""
    placement = node_of_ranks(nodes, tasks_per_node)
    assigned = roles(backend, len(placement), ps_count, evaluator)
    ports: list[int | None] = [None] * len(placement)
    if backend in ("ps", "multiworker"):
        ports = list(ports_for(placement, job_id, resv_ports))
    return [
        Slot(rank, node, local, role, index, None if role == "evaluator" else port)
        for rank, ((node, local), (role, index), port) in enumerate(zip(placement, assigned, ports, strict=True))
    ]


def managed_role(backend: str | None, ps_mode: str, role: str) -> bool:
    """In managed 'ps' mode the ps and worker tasks run TensorFlow servers, not the entry script."""
    return backend == "ps" and ps_mode == "managed" and role in ("ps", "worker")


def cluster_spec(slots: Sequence[Slot]) -> dict[str, list[str]]:
    """The TF cluster: role → ["host:port", ...] in index order (an evaluator is never part of it)."""
    cluster: dict[str, list[str]] = {}
    for slot in slots:
        if slot.role == "evaluator":
            continue
        cluster.setdefault(slot.role, []).append(f"{slot.node}:{slot.port}")
    return cluster


def tf_config(slots: Sequence[Slot], rank: int) -> dict[str, Any]:
    """TF_CONFIG for one task, in the seed's JSON shape."""
    me = slots[rank]
    return {"cluster": cluster_spec(slots), "task": {"type": me.role, "index": me.index}, "environment": "cloud"}


def bind_gpus(visible: str | None, slot: Slot, use_gpu: bool) -> str | None:
    """CUDA_VISIBLE_DEVICES for a task, or None to leave it as Slurm set it.

    ps tasks see no GPU. With one GPU per process: a task Slurm already gave exactly one GPU keeps
    it (--gpus-per-task); otherwise it takes the visible GPU at its local rank.
    """
    if slot.role == "ps":
        return ""
    if not use_gpu or not visible:
        return None
    gpus = [g for g in visible.split(",") if g]
    if len(gpus) == 1:
        return gpus[0]
    if slot.local_rank >= len(gpus):
        raise ValueError(
            f"task {slot.rank} has local rank {slot.local_rank} but only {len(gpus)} GPUs are visible "
            f"(CUDA_VISIBLE_DEVICES={visible}): request one GPU per process"
        )
    return gpus[slot.local_rank]


def block_tasks_per_node(ntasks: int, nodes: int, per_node: int) -> list[int]:
    """How srun spreads `ntasks` over an allocation of `nodes` × `per_node` (block: every node gets
    one, then the first nodes are filled up), as Slurm 22.05 does for `srun -n T` in the job."""
    if not nodes <= ntasks <= nodes * per_node:
        raise ValueError(f"{ntasks} tasks do not fit {nodes} nodes × {per_node} tasks with at least one task per node")
    counts, left = [1] * nodes, ntasks - nodes
    for i in range(nodes):
        add = min(per_node - 1, left)
        counts[i] += add
        left -= add
    return counts
