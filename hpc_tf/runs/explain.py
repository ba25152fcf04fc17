"""`explain`: the table of rank → node → role/index → port → GPUs that an allocation would produce.

It uses the same pure functions as the in-job runtime (tfconfig), so what it shows is what runs.
"""

from __future__ import annotations

from typing import Any

from ..config.targets import Target
from ..core.answers import NoAnswer
from ..core.components import components, het_slots
from ..core.hostlist import expand
from ..core.role_checks import site_hetjob
from ..core.spec import EstimatorSpec
from ..core.tfcluster import Slot, bind_gpus, block_tasks_per_node, managed_role, task_slots
from ..errors import UsageError
from ..settings import Settings

MAX_TASKS = 4096  # a table longer than this is not an explanation


def explain_rows(
    spec: EstimatorSpec, target: Target, nodelist: str | None, job_id: int | None, gpus_per_node: int | None
) -> list[dict[str, Any]]:
    """One row per task, for an allocation of `nodelist` (default node1..nodeN)."""
    if spec.roles:
        return het_rows(spec, target, nodelist, job_id, gpus_per_node)
    nodes = _nodes(nodelist, spec.node_count, "node_count")
    if spec.ntasks > MAX_TASKS:
        raise UsageError(
            f"explain shows at most {MAX_TASKS} tasks; this job has {spec.ntasks} "
            "(node_count × process_count_per_node, or the ps roles)"
        )
    per_node = block_tasks_per_node(spec.ntasks, spec.node_count, spec.most_tasks_per_node)
    backend = spec.distributed_backend
    slots = task_slots(
        backend,
        nodes,
        per_node,
        spec.parameter_server_count if backend == "ps" else 0,
        job_id or 0,
        evaluator=spec.evaluator,
    )
    requested = components(spec, target.options)[0].options.gpus_per_node or 0  # one allocation: one component
    gpus = gpus_per_node if gpus_per_node is not None else requested
    visible = ",".join(str(i) for i in range(gpus)) or None
    rows = []
    for slot in slots:
        cuda = bind_gpus(visible, slot, spec.use_gpu)
        rows.append(_row(spec, backend, slot, job_id, visible if cuda is None and spec.use_gpu else cuda))
    return rows


def _row(spec: EstimatorSpec, backend: str | None, slot: Slot, job_id: int | None, gpus: str | None) -> dict[str, Any]:
    """One task's row: where it runs, as what, its port (the rank when no job id gives the real one), its GPUs."""
    return {
        "rank": slot.rank,
        "node": slot.node,
        "local_rank": slot.local_rank,
        "role": slot.role,
        "index": slot.index,
        "port": None if slot.port is None else (slot.port if job_id is not None else slot.rank),
        "gpus": gpus,
        "runs": "TensorFlow server" if managed_role(backend, spec.ps_mode, slot.role) else spec.entry_script,
    }


def _nodes(nodelist: str | None, count: int, what: str) -> list[str]:
    """The allocation's nodes: --nodelist in Slurm's order, or node1..N."""
    try:
        nodes = expand(nodelist) if nodelist else [f"node{i + 1}" for i in range(count)]
    except ValueError as exc:
        raise UsageError(f"--nodelist: {exc}") from None
    if len(nodes) != count:
        raise UsageError(f"--nodelist: {nodelist!r} has {len(nodes)} nodes but {what} is {count}")
    return nodes


def het_rows(
    spec: EstimatorSpec, target: Target, nodelist: str | None, job_id: int | None, gpus_per_node: int | None
) -> list[dict[str, Any]]:
    """A heterogeneous job's rows (roles:): --nodelist holds the components' nodes one after the other."""
    comps = components(spec, target.options)
    records = [c.record for c in comps]
    nodes = _nodes(nodelist, sum(r.node_count for r in records), "the roles' node count (all components)")
    starts = [sum(r.node_count for r in records[:i]) for i in range(len(records))]
    groups = [nodes[start : start + r.node_count] for start, r in zip(starts, records, strict=True)]
    slots = het_slots(records, groups, job_id or 0)
    rows = []
    for c in comps:
        asked, r = c.options.gpus_per_node or 0, c.record
        gpus = asked if gpus_per_node is None or not asked else gpus_per_node
        visible = ",".join(str(i) for i in range(gpus)) or None
        for slot in slots[r.first_rank : r.first_rank + r.ntasks]:
            cuda = bind_gpus(visible, slot, spec.use_gpu)
            rows.append(
                {"component": r.index, **_row(spec, "ps", slot, job_id, visible if cuda is None and visible else cuda)}
            )
    return rows


def format_rows(spec: EstimatorSpec, rows: list[dict[str, Any]], job_id: int | None) -> str:
    """A plain text table; ports are offsets from the job's port base unless a job id is given."""
    head = ["rank", "node", "local", "role", "index", "port" if job_id is not None else "port (base+)", "gpus", "runs"]
    table = [
        [
            str(r["rank"]),
            r["node"],
            str(r["local_rank"]),
            r["role"],
            str(r["index"]),
            "-" if r["port"] is None else (str(r["port"]) if job_id is not None else f"+{r['port']}"),
            "-" if r["gpus"] is None else (r["gpus"] or "none"),
            r["runs"],
        ]
        for r in rows
    ]
    if spec.roles:  # a heterogeneous job: which component each task is in
        head, table = ["component", *head], [[str(r["component"]), *row] for r, row in zip(rows, table, strict=True)]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(head)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(head, widths, strict=True)).rstrip()]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table]
    backend = spec.distributed_backend or "none (one process)"
    notes = [f"distributed_backend: {backend}; {spec.ntasks} tasks on {spec.node_count} nodes"]
    if spec.roles:
        nodes = len({(r["component"], r["node"]) for r in rows})
        notes = [
            f"distributed_backend: ps; {spec.ntasks} tasks on {nodes} nodes in {len({r['component'] for r in rows})} "
            "components of one heterogeneous job (roles; --nodelist lists the components' nodes in order)"
        ]
    elif spec.spread_tasks:
        notes.append(
            f"no process_count_per_node: the job asks Slurm for --nodes={spec.node_count} --ntasks={spec.ntasks} "
            "and Slurm fills the first nodes first (the table shows that layout)"
        )
    if spec.distributed_backend in ("ps", "multiworker") and job_id is None:
        notes.append(
            "ports: each job gets its own block derived from its job "
            "id (or SLURM_STEP_RESV_PORTS); pass --job-id to see them"
        )
    return "\n".join([*notes, "", *lines])


def het_site_notes(settings: Settings) -> list[str]:
    """What this cluster's configuration means for a heterogeneous job (roles:): whether it would start at all
    (the backfill scheduler) and how its steps run (disable_hetjob_steps)."""
    from ..backends.probe import slurm_installed
    from ..backends.slurm import SlurmBackend

    ok, why = slurm_installed()
    config = SlurmBackend(settings).site_config() if ok else NoAnswer(why)
    if isinstance(config, NoAnswer):
        return [
            f"cluster not checked ({config.error}): a heterogeneous job needs SchedulerType=sched/backfill, and "
            "with SchedulerParameters=disable_hetjob_steps it runs one step per component"
        ]
    steps, refusal, notes = site_hetjob(config)
    out = [f"warning: {refusal}"] if refusal else []
    out += [f"note: {note}" for note in notes]
    if steps == "one":
        out.append("cluster: steps may span components: one srun step across the components")
    return out
