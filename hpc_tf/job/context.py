"""Where this task stands in the job, read once from the launcher's environment.

Environment variables read: SLURM_PROCID, SLURM_LOCALID, SLURM_STEP_NUM_TASKS, SLURM_STEP_NODELIST,
SLURM_STEP_TASKS_PER_NODE, SLURM_JOB_NODELIST, SLURM_JOB_ID, SLURM_STEP_RESV_PORTS, SLURM_RESTART_COUNT;
under mpirun OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_LOCAL_RANK, OMPI_COMM_WORLD_SIZE; from the local
launcher HPC_TF_TASK_RANK, HPC_TF_NTASKS, HPC_TF_JOB_ID; in a heterogeneous job SLURM_HET_SIZE and
SLURM_JOB_NODELIST_HET_GROUP_<n>, and from `hpc_tf.job.hetsteps` (one step per component) HPC_TF_HET_GROUP and
HPC_TF_HET_LEADER. A variable a launcher must set and did not is named in the error (no silent defaults: a wrong
rank would give a wrong TF_CONFIG).
"""

from __future__ import annotations

from typing import Mapping

import msgspec

from ..core.components import het_nodelists
from ..core.hostlist import expand, expand_tasks_per_node

HET_GROUP = "HPC_TF_HET_GROUP"  # set by hpc_tf.job.hetsteps: this step's component (SLURM_PROCID counts within it)
HET_LEADER = "HPC_TF_HET_LEADER"  # and the leader's job id (the port block and requeue use the whole job's)


class TaskSetupError(Exception):
    """This task cannot start (missing package, wrong host, layout mismatch); the message says why."""


class TaskContext(msgspec.Struct, frozen=True, kw_only=True):
    hostname: str
    rank: int
    local_rank: int
    ntasks: int
    local: bool  # started by the local backend (no Slurm step)
    nodes: list[str]
    tasks_per_node: list[int]
    job_nodes: list[str]
    job_id: int
    resv_ports: str | None = None
    restart_count: int = 0
    het_nodes: list[list[str]] = []  # a heterogeneous job's components' nodes, in Slurm's order
    het_group: int | None = None  # one step per component: this task's component (rank/ntasks are within it)
    het_problem: str = ""  # why the components' node lists could not be read (only a heterogeneous job needs them)

    @classmethod
    def from_env(cls, env: Mapping[str, str], hostname: str) -> "TaskContext":
        try:
            return _from_env(env, hostname)
        except ValueError as exc:
            raise TaskSetupError(f"cannot read this task's place in the job: {exc}") from None


def _need(env: Mapping[str, str], *names: str) -> str:
    for name in names:
        if env.get(name):
            return env[name]
    launched = "mpirun" if "OMPI_COMM_WORLD_RANK" in env else "srun"
    raise TaskSetupError(f"{' or '.join(names)} is not set: was this task started by {launched} inside an hpc_tf job?")


def _from_env(env: Mapping[str, str], hostname: str) -> TaskContext:
    local = "HPC_TF_TASK_RANK" in env or "SLURM_JOB_ID" not in env
    if "OMPI_COMM_WORLD_RANK" in env:  # mpirun: SLURM_PROCID belongs to Open MPI's daemon
        rank, local_rank = int(env["OMPI_COMM_WORLD_RANK"]), int(_need(env, "OMPI_COMM_WORLD_LOCAL_RANK"))
        ntasks = int(_need(env, "OMPI_COMM_WORLD_SIZE"))
    elif "HPC_TF_TASK_RANK" in env:  # the local launcher
        rank = local_rank = int(env["HPC_TF_TASK_RANK"])
        ntasks = int(_need(env, "HPC_TF_NTASKS"))
    elif local:  # one local process (no launcher)
        rank, local_rank, ntasks = 0, 0, 1
    else:
        rank, local_rank = int(_need(env, "SLURM_PROCID")), int(_need(env, "SLURM_LOCALID"))
        ntasks = int(_need(env, "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"))
    if local:
        nodes, per_node = ["localhost"], [ntasks]
    else:
        nodes = expand(_need(env, "SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST"))
        per_node = expand_tasks_per_node(_need(env, "SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"))
    job_nodes = expand(env["SLURM_JOB_NODELIST"]) if env.get("SLURM_JOB_NODELIST") else [hostname]
    het_nodes, het_problem = _het_nodes(env, local)
    group = env.get(HET_GROUP)
    if group is not None and not group.isdigit():
        raise ValueError(f"{HET_GROUP} is {group!r}, not a component number")
    return TaskContext(
        hostname=hostname,
        rank=rank,
        local_rank=local_rank,
        ntasks=ntasks,
        local=local,
        nodes=nodes,
        tasks_per_node=per_node,
        job_nodes=job_nodes,
        job_id=int(env.get(HET_LEADER) or env.get("SLURM_JOB_ID") or env.get("HPC_TF_JOB_ID") or "0"),
        resv_ports=env.get("SLURM_STEP_RESV_PORTS") or None,
        # the local supervisor numbers its attempts itself (an outer allocation's SLURM_RESTART_COUNT is not ours)
        restart_count=int((env.get("HPC_TF_RESTART_COUNT") if local else env.get("SLURM_RESTART_COUNT")) or "0"),
        het_nodes=het_nodes,
        het_group=int(group) if group is not None and het_nodes else None,
        het_problem=het_problem,
    )


def _het_nodes(env: Mapping[str, str], local: bool) -> tuple[list[list[str]], str]:
    """The components' node lists, or why there are none: not an error here, since a job submitted from inside
    a heterogeneous allocation may inherit a stale SLURM_HET_SIZE; a job whose job.json has components checks."""
    if local:
        return [], "the task was not started by Slurm"
    try:
        return het_nodelists(env), ""
    except ValueError as exc:
        return [], str(exc)
