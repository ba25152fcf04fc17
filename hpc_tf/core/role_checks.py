"""Validation of per-role placement (`roles:`): the mapping's shape, each role's options, and the rules tying the
roles to the rest of the config (task counts, GPUs, compute_target, the backend). Pure; each problem names its
keys and what is allowed. The components themselves are `components`."""

from __future__ import annotations

import difflib
from typing import Any, Mapping

from ..errors import Problem
from .components import STEP_SEPARATOR, role_tasks
from .records import HetSteps
from .slurm_options import WHOLE_JOB_FIELDS, level, option_name
from .spec import ROLE_NAMES, EstimatorSpec, RoleOptions, SlurmOptions
from .validation import check_time_limit, convert

# compute_target keys that describe the whole job: Slurm passes them from the first component to the others.
JOB_LEVEL_KEYS = WHOLE_JOB_FIELDS  # time, account, qos, exclude, reservation
ROLE_KEYS_TEXT = (
    "partition, cpus_per_task, mem, gpus_per_node, constraint, additional_parameters, node_count, "
    "process_count_per_node"
)
NEEDS_SLURM = (
    "heterogeneous placement needs Slurm (one job of several components, each on its own kind of node); the "
    "local backend runs every task on this machine: leave roles out to run here"
)
NOT_BACKFILL = (
    "this cluster's SchedulerType is {sched}, and Slurm takes heterogeneous jobs only with sched/backfill (sbatch "
    "would answer 'Requested operation not supported on this system'): leave roles out (one allocation) or ask "
    "the site for the backfill scheduler"
)
STEPS_DISABLED = (
    "this cluster sets SchedulerParameters=disable_hetjob_steps (no step may span components): hpc_tf starts "
    "one step per component and ends the job at the first task that fails"
)
NO_SWEEP = (
    "Slurm runs a sweep's trials as one job array and has no arrays of heterogeneous jobs: leave roles out "
    "(each trial in one allocation) or run the roles' job without the sweep"
)


def convert_roles(value: Any, source: str | None) -> tuple[dict[str, RoleOptions], list[Problem]]:
    """`roles:` → role → RoleOptions (`null` is no options of its own), with every problem of its shape."""
    if not isinstance(value, Mapping) or not value:
        what = "empty" if isinstance(value, Mapping) else "expected a mapping of role → Slurm options"
        return {}, [
            Problem(
                "roles",
                f"{what}: give one or more of {', '.join(ROLE_NAMES)}, or leave roles out (one allocation for all)",
                value,
                source=source,
            )
        ]
    roles: dict[str, RoleOptions] = {}
    problems: list[Problem] = []
    for name, entry in value.items():
        key = f"roles.{name}"
        if name not in ROLE_NAMES:
            guess = difflib.get_close_matches(str(name), ROLE_NAMES, n=1, cutoff=0.6)
            hint = f"did you mean {guess[0]!r}?" if guess else f"valid roles: {', '.join(ROLE_NAMES)}"
            problems.append(Problem(key, f"unknown role; {hint}", source=source))
            continue
        entry = {} if entry is None else entry
        if not isinstance(entry, Mapping):
            problems.append(Problem(key, f"expected a mapping of the role's options ({ROLE_KEYS_TEXT})", entry, source))
            continue
        job_level = [
            Problem(
                f"{key}.{k}",
                "an option of the whole job (sbatch passes it from the first component to the others): "
                "put it in compute_target",
                entry[k],
                source=source,
            )
            for k in JOB_LEVEL_KEYS
            if k in entry
        ]
        options, more = convert(RoleOptions, {k: v for k, v in entry.items() if k not in JOB_LEVEL_KEYS}, source, key)
        problems += job_level + more
        if options is not None and not job_level:
            roles[str(name)] = options
    return roles, problems


def check_roles(spec: EstimatorSpec, given: Mapping[str, Any], source: str | None) -> list[Problem]:
    """Cross-key rules of `roles` ('ps' only; another backend is refused by `validation.check_layout`)."""
    if "roles" not in given or spec.distributed_backend != "ps":
        return []
    problems = [
        Problem(
            key,
            f"with roles, each role gives its own (roles.worker.{key}, …): the job has one component per role",
            given[key],
            source=source,
        )
        for key in ("node_count", "process_count_per_node")
        if key in given
    ]
    if given.get("compute_target") == "local":
        problems.append(Problem("roles + compute_target", NEEDS_SLURM, "local", source=source))
    if "evaluator" in spec.roles and not spec.evaluator:
        problems.append(
            Problem("roles.evaluator", "only with evaluator: true (the job has no evaluator task)", source=source)
        )
    problems += [
        Problem(
            f"launcher_args[{i}]",
            f"with roles, {STEP_SEPARATOR!r} separates the components' commands (srun a : b); it cannot be an argument",
            arg,
            source=source,
        )
        for i, arg in enumerate(spec.launcher_args)
        if arg == STEP_SEPARATOR
    ]
    for role in ROLE_NAMES:
        if role_tasks(spec, role):
            problems += _check_count(spec, role, source)
    return problems + _check_gpus(spec, source)


def _count_text(spec: EstimatorSpec, role: str) -> str:
    if role == "ps":
        return f"parameter_server_count is {spec.parameter_server_count}"
    if role == "worker":
        return f"worker_count is {spec.worker_count}"
    return f"the {role} is exactly one task"


def _check_count(spec: EstimatorSpec, role: str, source: str | None) -> list[Problem]:
    """A role's component runs exactly the role's tasks, the same number on each of its nodes."""
    own = spec.roles.get(role) or RoleOptions()
    tasks, per_node = role_tasks(spec, role), own.process_count_per_node or 1
    if own.node_count is None and tasks % per_node:
        return [
            Problem(
                f"roles.{role}.process_count_per_node",
                f"{per_node} tasks per node do not divide the {role} role's {tasks} tasks ({_count_text(spec, role)}): "
                "each node of a component runs as many tasks as the others",
                per_node,
                source=source,
            )
        ]
    if own.node_count is not None and own.node_count * per_node != tasks:
        return [
            Problem(
                f"roles.{role}.node_count × roles.{role}.process_count_per_node",
                f"{own.node_count} × {per_node} = {own.node_count * per_node} tasks, but the {role} role runs {tasks} "
                f"({_count_text(spec, role)})",
                source=source,
            )
        ]
    return []


def _asks_gpus(name: str, value: Any) -> bool:
    option = option_name(name)
    return "gpu" in option or (option.startswith(("gres", "tres")) and "gpu" in str(value).lower())


def _check_gpus(spec: EstimatorSpec, source: str | None) -> list[Problem]:
    """GPUs are asked per role, with use_gpu: true; never for parameter servers; one per process at least."""
    problems: list[Problem] = []
    asked = False
    for role, own in spec.roles.items():
        params = [name for name, value in own.additional_parameters.items() if _asks_gpus(name, value)]
        if role == "ps" and (own.gpus_per_node or params):
            key = "roles.ps.gpus_per_node" if own.gpus_per_node else f"roles.ps.additional_parameters.{params[0]}"
            value = own.gpus_per_node or own.additional_parameters[params[0]]
            message = "parameter servers hold variables and get no GPU: ask GPUs for roles.worker (or chief, evaluator)"
            problems.append(Problem(key, message, value, source=source))
        elif own.gpus_per_node:
            asked = True
            per_node = own.process_count_per_node or 1
            if not spec.use_gpu:
                message = "GPUs are requested only with use_gpu: true"
                problems.append(Problem(f"roles.{role}.gpus_per_node", message, own.gpus_per_node, source=source))
            elif own.gpus_per_node < per_node:
                message = f"{own.gpus_per_node} GPUs per node for {per_node} processes per node: each needs its own GPU"
                problems.append(Problem(f"roles.{role}.gpus_per_node", message, own.gpus_per_node, source=source))
    if spec.use_gpu and not asked:
        message = "with roles, GPUs are asked per role: set roles.worker.gpus_per_node (no role asks for any)"
        problems.append(Problem("use_gpu", message, True, source=source))
    return problems


def check_target(spec: EstimatorSpec, options: SlurmOptions, source: str | None) -> list[Problem]:
    """With roles the (resolved) compute_target holds the whole job's options and the roles' defaults: no GPUs, no
    option sbatch would read for the first component alone (under any name sbatch reads as one), no --mem a later
    component would inherit unasked, no warning at or over a named target's time limit."""
    problems = check_time_limit(spec, options.time, source)
    if options.gpus_per_node is not None:
        message = (
            "with roles, GPUs are asked per role (roles.worker.gpus_per_node): a job-level gpus_per_node would "
            "give every component GPUs, parameter servers included"
        )
        problems.append(Problem("compute_target.gpus_per_node", message, options.gpus_per_node, source=source))
    for name, value in options.additional_parameters.items():
        if level(name) != "job":
            message = (
                "with roles, sbatch would apply it to the first component only (the chief's): put it in "
                "roles.<role>.additional_parameters of the roles that need it"
            )
            problems.append(Problem(f"compute_target.additional_parameters.{name}", message, value, source=source))
    return problems + _inherited_mem(spec, options, source)


def _inherited_mem(spec: EstimatorSpec, options: SlurmOptions, source: str | None) -> list[Problem]:
    """sbatch passes --mem on to the next components: one without its own would get the one before's."""
    if options.mem is not None:
        return []
    before: tuple[str, str | int] | None = None
    for role in (r for r in ROLE_NAMES if role_tasks(spec, r)):
        own = spec.roles.get(role) or RoleOptions()
        if own.mem is None and before is not None:
            message = (
                f"not given, so Slurm would give this component the {before[0]} component's --mem={before[1]} "
                f"(sbatch passes --mem on to later components): give roles.{role}.mem, or compute_target.mem for all"
            )
            return [Problem(f"roles.{role}.mem", message, source=source)]
        if own.mem is not None:
            before = (role, own.mem)
    return []


def site_hetjob(config: Mapping[str, str]) -> tuple[HetSteps, str | None, list[str]]:
    """What a cluster's `scontrol show config` means for a heterogeneous job: (how to launch its steps — "one"
    or "per_component" —, why it cannot start at all or None, what to tell the user)."""
    sched = config.get("SchedulerType", "")
    params = [item.strip() for item in config.get("SchedulerParameters", "").split(",")]
    refusal = NOT_BACKFILL.format(sched=sched) if sched and sched != "sched/backfill" else None
    if "disable_hetjob_steps" in params:
        return "per_component", refusal, [STEPS_DISABLED]
    return "one", refusal, []
