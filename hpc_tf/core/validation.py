"""Validation rules of the estimator config: per-field checks, type conversion that reports every
problem, and the cross-key rules of distributed training. Pure: no files, no environment.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, TypeVar

import msgspec

from ..errors import Problem
from .field_checks import CHECKS
from .slurm_options import option_name, time_limit_seconds
from .spec import (
    CHECKPOINT_SIGNALS,
    DISTRIBUTED_BACKENDS,
    MAX_NODES,
    MAX_TASKS_PER_NODE,
    SBATCH_SIGNALS,
    EstimatorSpec,
    RoleOptions,
    SlurmOptions,
)
from .tfcluster import MAX_TF_TASKS, PORT_HIGH, PORT_LOW

S = TypeVar("S", EstimatorSpec, SlurmOptions, RoleOptions)
_TYPE_WORDS = {
    "int": "an integer",
    "str": "a string",
    "bool": "true or false",
    "float": "a number",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


REQUEUE_BACKENDS = (None, "mpi", "ps")  # where every process saving at the same step is built
PORTS_TEXT = f"each task of a TF cluster listens on its own port of the job's block in {PORT_LOW}-{PORT_HIGH - 1}"
# why a count stops where it does (README "Scale"), said after msgspec's "expected an integer <= N"
BOUNDS = {
    "node_count": f"Slurm reads at most {MAX_NODES} hosts in one hostlist range, and lists consecutive nodes as one",
    "process_count_per_node": f"Slurm's MaxTasksPerNode may not exceed {MAX_TASKS_PER_NODE}",
    "worker_count": PORTS_TEXT,
    "parameter_server_count": PORTS_TEXT,
}


def convert(
    cls: type[S], data: Mapping[str, Any], source: str | None, prefix: str = ""
) -> tuple[S | None, list[Problem]]:
    """Type-check a mapping field by field into `cls`, collecting every problem (msgspec stops at the first)."""
    problems: list[Problem] = []
    fields = {f.name: f for f in msgspec.structs.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            import difflib  # only for a typo: not on every load

            guess = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.6)
            hint = f"; did you mean {guess[0]!r}?" if guess else f"; valid keys: {', '.join(fields)}"
            problems.append(Problem(dotted, "unknown key" + hint, source=source))
            continue
        try:
            values[key] = msgspec.convert(value, type=fields[key].type)
        except msgspec.ValidationError as exc:
            problems.append(Problem(dotted, _message(key, str(exc)), value, source=source))
            continue
        except (UnicodeError, ValueError, OverflowError):  # text that is not Unicode, a number past any limit
            problems.append(Problem(dotted, "not a valid value for this key", value, source=source))
            continue
        bad = CHECKS.get(cls, {}).get(key, lambda _: None)(values[key])
        if bad:
            sub, message = bad
            shown = (
                value.get(sub)
                if sub and isinstance(value, dict)
                else (value[int(sub[1:-1])] if sub.startswith("[") and isinstance(value, list) else value)
            )
            key_text = dotted + (sub if sub.startswith("[") else f".{sub}") if sub else dotted
            problems.append(Problem(key_text, message, shown, source=source))
    for name, field in fields.items():
        if field.required and name not in data:
            problems.append(Problem(f"{prefix}.{name}" if prefix else name, "is required", source=source))
    return (None, problems) if problems else (cls(**values), [])


def _message(key: str, text: str) -> str:
    if key == "distributed_backend":
        return "unknown distributed backend; valid values: null, " + ", ".join(repr(b) for b in DISTRIBUTED_BACKENDS)
    if key == "launcher":
        return "unknown launcher; valid values: 'srun', 'mpirun'"
    if key == "environment_build":
        return "valid values: 'submit' (build before queueing, the default), 'job' (build inside the job)"
    if key == "ps_mode":
        return (
            "unknown ps_mode; valid values: 'managed' (hpc_tf runs the ps/worker servers), "
            "'script' (your script runs on every task)"
        )
    if key == "checkpoint_signal":
        allowed = ", ".join(repr(sig) for sig in CHECKPOINT_SIGNALS)
        others = ", ".join(sig for sig in SBATCH_SIGNALS if sig not in CHECKPOINT_SIGNALS)
        return (
            f"valid values: {allowed} (USR2 is the default): of the signal names "
            f"sbatch 22.05 takes for --signal, those the task's runtime can own ({others} mean something else to "
            "Slurm, the shell or the programs a script starts; PWR sbatch refuses)"
        )
    if key == "checkpoint_every":
        return "valid values: 'epoch' (the default), or a number of batches from 1"
    if key in BOUNDS and "<=" in text:
        return _message("", text) + f" ({BOUNDS[key]})"
    text = re.sub(r" - at `\$[^`]*`$", "", text)
    text = re.sub(r", got `[^`]*`$", "", text)  # the value itself is shown after the message
    text = re.sub(r"`([a-z]+)`", lambda m: _TYPE_WORDS.get(m.group(1), m.group(1)), text)
    text = re.sub(
        r"`([^`]*)`", lambda m: " or ".join(_TYPE_WORDS.get(t.strip(), t.strip()) for t in m.group(1).split("|")), text
    )
    return text[0].lower() + text[1:]


def unsafe_strings(value: Any, key: str, source: str | None) -> list[Problem]:
    """Newlines, carriage returns, NUL bytes and text that is not Unicode (a lone surrogate) are refused in
    every string (keys too)."""
    found: list[Problem] = []
    if isinstance(value, str):
        if any(ch in value for ch in "\n\r\x00"):
            found.append(Problem(key, "must not contain a newline, carriage return or NUL byte", value, source=source))
        elif not _is_unicode(value):
            found.append(Problem(key, "is not valid Unicode text (a lone surrogate)", value, source=source))
    elif isinstance(value, Mapping):
        for sub_key, sub in value.items():
            sub_path = f"{key}.{sub_key}" if key else str(sub_key)
            if isinstance(sub_key, str) and (any(ch in sub_key for ch in "\n\r\x00") or not _is_unicode(sub_key)):
                found.append(
                    Problem(
                        sub_path,
                        "a key must be Unicode text without a newline, carriage return or NUL byte",
                        sub_key,
                        source=source,
                    )
                )
            found += unsafe_strings(sub, sub_path, source)
    elif isinstance(value, (list, tuple)):
        for index, sub in enumerate(value):
            found += unsafe_strings(sub, f"{key}[{index}]", source)
    return found


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


ONLY_FOR = {
    "worker_count": ("ps",),
    "parameter_server_count": ("ps",),
    "ps_mode": ("ps",),
    "evaluator": ("ps",),
    "roles": ("ps",),
    "launcher": ("mpi",),
    "mpi_plugin": ("mpi",),
    "launcher_args": ("mpi", "ps", "multiworker"),
}


def check_layout(spec: EstimatorSpec, given: Mapping[str, Any], source: str | None) -> list[Problem]:
    """Cross-key rules of distributed training; keys that do nothing for the chosen backend are refused."""
    problems = []
    backend = spec.distributed_backend
    for key, backends in ONLY_FOR.items():
        if key in given and backend not in backends:
            problems.append(
                Problem(
                    key,
                    f"only used with distributed_backend {' or '.join(repr(b) for b in backends)} "
                    f"(distributed_backend is {backend!r})",
                    given[key],
                    source=source,
                )
            )
    target = given.get("compute_target")
    params = target.get("additional_parameters") if isinstance(target, Mapping) else None
    asked = (
        [k for k in params if isinstance(k, str) and option_name(k) == "requeue"] if isinstance(params, Mapping) else []
    )
    if spec.requeue_on and asked:
        problems.append(
            Problem(
                f"requeue_on + compute_target.additional_parameters.{asked[0]}",
                "give one: requeue_on says which causes requeue the run (and records each attempt)"
                + ("" if asked[0] == "requeue" else f"; sbatch reads {asked[0]!r} as --requeue"),
                spec.requeue_on,
                source=source,
            )
        )
    problems += check_restarts(spec, source)
    time = target.get("time") if isinstance(target, Mapping) else None
    problems += check_time_limit(spec, time if isinstance(time, (str, int)) else None, source)
    if spec.requeue_on and backend not in REQUEUE_BACKENDS:
        problems.append(
            Problem(
                "requeue_on",
                f"works with one process, distributed_backend 'mpi' (Horovod: the ranks agree on the step) or 'ps' "
                f"(the chief saves); not yet with {backend!r}, whose workers would need to agree on the step to save",
                spec.requeue_on,
                source=source,
            )
        )
    if backend is None and spec.slot_count > 1:
        key = "node_count" if spec.node_count > 1 else "process_count_per_node"
        problems.append(
            Problem(
                key,
                "more than one process needs a distributed_backend ('mpi', 'ps' or "
                "'multiworker'); without one every process would run the same training",
                getattr(spec, key),
                source=source,
            )
        )
    if backend == "ps":
        if spec.parameter_server_count < 1:
            problems.append(
                Problem(
                    "parameter_server_count",
                    "'ps' needs at least 1 parameter server",
                    spec.parameter_server_count,
                    source=source,
                )
            )
        if spec.ntasks < spec.node_count:
            problems.append(
                Problem(
                    "node_count",
                    f"'ps' runs {spec.ntasks} tasks ({spec.roles_text}): {spec.node_count} "
                    f"nodes would leave {spec.node_count - spec.ntasks} without a task",
                    spec.node_count,
                    source=source,
                )
            )
        if spec.ntasks > spec.slot_count and not spec.spread_tasks:
            problems.append(
                Problem(
                    "worker_count + parameter_server_count",
                    f"'ps' needs {spec.ntasks} tasks ({spec.roles_text}) but node_count × process_count_per_node = "
                    f"{spec.node_count} × {spec.per_node} = {spec.slot_count} slots: "
                    f"{spec.ntasks - spec.slot_count} missing",
                    source=source,
                )
            )
    if backend in ("ps", "multiworker") and spec.ntasks > MAX_TF_TASKS:
        key = "worker_count + parameter_server_count" if backend == "ps" else "node_count × process_count_per_node"
        problems.append(
            Problem(key, f"{backend!r} runs {spec.ntasks} tasks, at most {MAX_TF_TASKS}: {PORTS_TEXT}", source=source)
        )
    if backend == "mpi" and spec.launcher == "mpirun" and spec.mpi_plugin != "pmix" and "mpi_plugin" in given:
        problems.append(
            Problem(
                "mpi_plugin", "is an srun setting; launcher 'mpirun' does not use it", spec.mpi_plugin, source=source
            )
        )
    for i, arg in enumerate(spec.launcher_args):
        if not arg:
            problems.append(Problem(f"launcher_args[{i}]", "an argument cannot be empty", arg, source=source))
    return problems


def check_restarts(spec: EstimatorSpec, source: str | None) -> list[Problem]:
    """max_restarts per cause counts every cause of requeue_on: a cause it leaves out would never be requeued."""
    if not isinstance(spec.max_restarts, dict):
        return []
    missing = [cause for cause in spec.requeue_on if cause not in spec.max_restarts]
    if not missing:
        return []
    example = ", ".join(f"{cause}: 3" for cause in spec.requeue_on)
    return [
        Problem(
            "max_restarts",
            f"no count for {', '.join(missing)}, which requeue_on lists: that cause would never be requeued; give "
            f"every cause of requeue_on its count ({{{example}}}), or one number for all causes",
            spec.max_restarts,
            source=source,
        )
    ]


def check_time_limit(spec: EstimatorSpec, target_time: str | int | None, source: str | None) -> list[Problem]:
    """Slurm's warning comes checkpoint_lead_seconds before the time limit (max_run_duration_seconds, else the
    compute target's time): a lead at or over the limit warns as the job starts, and every attempt would save and
    requeue at once. Only where the warning is asked (requeue_on with timeout or preemption)."""
    if not ("timeout" in spec.requeue_on or "preemption" in spec.requeue_on):
        return []
    limit: int | None = spec.max_run_duration_seconds
    key = "max_run_duration_seconds"
    if limit is None:
        key, limit = "compute_target.time", time_limit_seconds(target_time)
    lead = spec.checkpoint_lead_seconds
    if limit is None or limit <= 0 or lead < limit:  # (0 is no limit to Slurm; field_checks refuses both)
        return []
    shown = f"{limit} s" if key == "max_run_duration_seconds" else f"{target_time!r}, {limit} s"
    return [
        Problem(
            f"checkpoint_lead_seconds + {key}",
            f"a lead of {lead} s is not shorter than the job's time limit ({key}: {shown}): the warning "
            "would come as the job starts and every attempt would end at once; give a lead shorter than the limit "
            "(long enough to save), or a longer limit",
            lead,
            source=source,
        )
    ]


def check_gpus(spec: EstimatorSpec, target_gpus: int | None, source: str | None) -> list[Problem]:
    """With one GPU per process, a node must have at least as many GPUs as processes."""
    if spec.use_gpu and target_gpus is not None and target_gpus < spec.most_tasks_per_node:
        return [
            Problem(
                "compute_target.gpus_per_node",
                f"{target_gpus} GPUs per node for {spec.most_tasks_per_node} "
                "processes per node: each process needs its own GPU",
                target_gpus,
                source=source,
            )
        ]
    return []


def dedupe(problems: list[Problem]) -> list[Problem]:
    seen, out = set(), []
    for p in problems:
        marker = (p.key, p.message)
        if marker not in seen:
            seen.add(marker)
            out.append(p)
    return out
