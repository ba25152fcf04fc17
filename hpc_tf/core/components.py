"""Per-role placement (`roles:`, issue 12): a 'ps' job as one Slurm heterogeneous job, one component per role.

Components come in the order chief, ps, worker, evaluator (the roles the job has; a role that `roles` does not
list takes compute_target's options, one task per node). The batch script runs on the first node of component
0, the chief's (TF2's coordinator). Ranks are global across the components (one `srun a : b` step has
"non-overlapping task IDs", Slurm 22.05 heterogeneous_jobs.html) and follow the component order, so roles,
indexes, ports and TF_CONFIG are those of the same job in one allocation: only the nodes differ.

Options: sbatch passes some options from one component to the next (the doc's "propagated options": time,
account, qos, exclude, reservation, requeue, signal, job-name, output, …). They describe the whole job and are
rendered once, in component 0, from compute_target. Each component gets its own nodes, tasks per node,
partition, cpus-per-task, constraint and gpus-per-node (reset for every component), and mem (propagated as
well: `hetjob_checks` refuses a component that would silently inherit the one before's).

Launch: one srun step spanning the components, `--mpi=none` (the TensorFlow servers talk gRPC, and PMIx across
components is a known failure, openpmix #3098), one launcher log per component (srun's %t is not the global rank
in such a step). Where the site disables steps across components (SchedulerParameters=disable_hetjob_steps), one
step per component, started and watched by `hpc_tf.job.hetsteps` in the batch script, which tells each step's tasks
their component (their SLURM_PROCID is then the rank within it). Pure: node lists are passed in.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import msgspec

from .hostlist import expand
from .plan import BATCH_LOG, JOB_MODULE, ScriptPlan, asks_requeue, slurm_plan, slurm_time
from .records import ComponentRecord, HetSteps
from .requeue import requeue_directives
from .spec import ROLE_NAMES, EstimatorSpec, RoleOptions, SlurmOptions
from .tfcluster import Slot, node_of_ranks, ports_for

Directive = tuple[str, str | None]
# srun's %t in a heterogeneous step is not the global rank (measured: het0-0, het1-2, het2-4, het2-5 for ranks 0-3):
# one file name per component cannot collide.
HET_LAUNCHER_LOG = "logs/launcher-het{group}-%t.log"
# Set in every task of a heterogeneous job (srun(1), "SLURM_*_HET_GROUP_#"); read by the in-job side.
HET_SIZE = "SLURM_HET_SIZE"
HET_NODELIST = "SLURM_JOB_NODELIST_HET_GROUP_{group}"
HET_STEPS_MODULE = "hpc_tf.job.hetsteps"  # one step per component: starts them, ends the job at the first failure
STEP_SEPARATOR = ":"  # between the components' commands, as srun's own (launcher_args may not contain it)
JOB_LEVEL = ("account", "qos", "exclude", "reservation")  # compute_target options Slurm passes to every component
COMPONENT_LEVEL = ("partition", "cpus_per_task", "mem", "constraint")  # a role's own; compute_target's by default


class Component(msgspec.Struct, frozen=True):
    """One component of a heterogeneous job: one role's tasks, where they start in the ranks, their nodes' options."""

    index: int
    role: str
    node_count: int
    tasks_per_node: int
    first_rank: int
    options: RoleOptions  # the role's own options, compute_target's COMPONENT_LEVEL ones where the role has none
    gpus_per_node: int = 0

    @property
    def ntasks(self) -> int:
        return self.node_count * self.tasks_per_node

    def record(self) -> ComponentRecord:
        """What the in-job runtime needs of it (job.json): no options."""
        return ComponentRecord(
            index=self.index,
            role=self.role,
            node_count=self.node_count,
            tasks_per_node=self.tasks_per_node,
            first_rank=self.first_rank,
        )


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
    """The job's components, in rank order; validation has checked each role's size against its count."""
    out: list[Component] = []
    rank = 0
    for role in ROLE_NAMES:
        if not role_tasks(spec, role):
            continue
        own = spec.roles.get(role) or RoleOptions()
        defaults = {name: getattr(target, name) for name in COMPONENT_LEVEL if getattr(own, name) is None}
        nodes, per_node = role_shape(spec, role)
        gpus = (own.gpus_per_node or 0) if spec.use_gpu and role != "ps" else 0  # ps never: they hold variables
        out.append(Component(len(out), role, nodes, per_node, rank, msgspec.structs.replace(own, **defaults), gpus))
        rank += nodes * per_node
    return out


def _extra(params: Mapping[str, Any]) -> list[Directive]:
    """additional_parameters as options: `true`/`null` a bare flag, `false` left out (as for one allocation)."""
    return [
        (name.replace("_", "-"), None if value is None or value is True else str(value))
        for name, value in params.items()
        if value is not False
    ]


def job_directives(spec: EstimatorSpec, target: SlurmOptions) -> list[Directive]:
    """The whole job's options, rendered in component 0 only: sbatch passes them on to the other components
    (and reads output and mail from the first one only). Requeue acts on the whole job (its leader's id)."""
    out: list[Directive] = [("job-name", spec.experiment), ("output", BATCH_LOG), ("open-mode", "append")]
    if spec.requeue_on:
        out += requeue_directives(spec.requeue_on, spec.checkpoint_signal, spec.checkpoint_lead_seconds)
    elif not asks_requeue(target):
        out.append(("no-requeue", None))
    if spec.max_run_duration_seconds is not None:
        out.append(("time", slurm_time(spec.max_run_duration_seconds)))
    elif target.time is not None:
        out.append(("time", str(target.time)))
    out += [(name, str(getattr(target, name))) for name in JOB_LEVEL if getattr(target, name) is not None]
    return out + _extra(target.additional_parameters)


def component_directives(component: Component) -> list[Directive]:
    """One component's own options: its size, its nodes' kind, its GPUs, its additional_parameters."""
    options = component.options
    out: list[Directive] = [("nodes", str(component.node_count)), ("ntasks-per-node", str(component.tasks_per_node))]
    for name in COMPONENT_LEVEL:
        value = getattr(options, name)
        if value is not None:
            out.append((name.replace("_", "-"), str(value)))
    if component.gpus_per_node:
        out.append(("gpus-per-node", str(component.gpus_per_node)))
    return out + _extra(options.additional_parameters)


def het_directives(spec: EstimatorSpec, target: SlurmOptions) -> list[tuple[str, list[Directive]]]:
    """(role, #SBATCH options) of each component, the job's own options in the first."""
    comps = components(spec, target)
    return [(c.role, (job_directives(spec, target) if c.index == 0 else []) + component_directives(c)) for c in comps]


def _component_argv(spec: EstimatorSpec, c: Component, python: str) -> list[str]:
    argv = [f"--het-group={c.index}", f"--ntasks={c.ntasks}", "--mpi=none"]
    argv += [f"--output={HET_LAUNCHER_LOG.format(group=c.index)}", *spec.launcher_args]
    return [*argv, python, "-u", "-m", JOB_MODULE, "."]


def het_srun_argv(spec: EstimatorSpec, comps: Sequence[Component], python: str) -> list[str]:
    """One step over every component: `srun <step options> --het-group=0 … <runtime> : --het-group=1 … : …`.

    `--unbuffered` and `--kill-on-bad-exit` are passed on to the later components by srun itself; the task count,
    the MPI plugin and the log are reset for each component, so each gets its own (launcher_args too)."""
    argv = ["srun", "--unbuffered", "--kill-on-bad-exit=1"]
    for c in comps:
        argv += [STEP_SEPARATOR] if c.index else []
        argv += _component_argv(spec, c, python)
    return argv


def per_component_argv(spec: EstimatorSpec, comps: Sequence[Component], python: str) -> list[str]:
    """One step per component, under `hpc_tf.job.hetsteps` (the batch script's process): `python -m
    hpc_tf.job.hetsteps srun … --het-group=0 … : srun … --het-group=1 … : …`."""
    argv = [python, "-u", "-m", HET_STEPS_MODULE]
    for c in comps:
        argv += [STEP_SEPARATOR] if c.index else []
        argv += ["srun", "--unbuffered", "--kill-on-bad-exit=1", *_component_argv(spec, c, python)]
    return argv


def het_plan(
    spec: EstimatorSpec, target: SlurmOptions, python: str, package_root: str, steps: HetSteps = "one"
) -> ScriptPlan:
    """The heterogeneous job's script: one #SBATCH block per component, then one srun step spanning them (or,
    with `steps="per_component"`, one step per component)."""
    comps = components(spec, target)
    launch = per_component_argv if steps == "per_component" else het_srun_argv
    return ScriptPlan(
        "slurm",
        [],
        launch(spec, comps, python),
        package_root,
        list(spec.modules),
        list(spec.setup),
        het_directives(spec, target),
    )


def job_plan(
    spec: EstimatorSpec,
    options: SlurmOptions,
    python: str,
    package_root: str,
    as_root: bool = False,
    het_steps: HetSteps = "one",
) -> ScriptPlan:
    """The Slurm job of any config: a heterogeneous job with roles, else one allocation (`plan.slurm_plan`)."""
    if spec.roles:
        return het_plan(spec, options, python, package_root, het_steps)
    return slurm_plan(spec, options, python, package_root, as_root)


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


def het_layout(
    comps: Sequence[Component | ComponentRecord],
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
