"""Submitting a sweep: its trials as Slurm job arrays, one sbatch per array (one array unless the cluster's
MaxArraySize says otherwise), through submitit like every job.

Random and grid trials are drawn here, from the seed, into `trials.jsonl` before anything is queued
(reproducible, inspectable); bayesian trials are asked of Optuna by each array task when it starts. A
failed sbatch ends the sweep FAILED with a message naming the arrays already queued.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import os
import shutil
import sys
from functools import partial
from pathlib import Path

import msgspec

from .._location import package_root
from ..backends import choose_backend
from ..config.targets import Target, resolve_target
from ..core.plan import job_record
from ..core.records import SweepRecord
from ..core.role_checks import NO_SWEEP
from ..core.spec import EstimatorSpec
from ..errors import ConfigError, HpcTfError, Problem, SubmissionError, UsageError
from ..rundir import SECRET_MODE, write_atomic
from ..runs.render import render_script
from ..settings import Settings
from .core import transitions as st
from .core.arrays import array_plan, entry_only, plan_chunks
from .core.sampling import draw_trials
from .core.spec import SweepSpec
from .sweepdir import SweepDir


class SweepSubmission(msgspec.Struct, frozen=True):
    """A sweep ready to go: the job, the hyperdrive block, the target and the chosen backend."""

    spec: EstimatorSpec
    sweep: SweepSpec
    target: Target
    backend: str
    backend_reason: str
    sweep_key: str = "hyperdrive"  # the block's name in the config, for error messages


def prepare_sweep(
    spec: EstimatorSpec, sweep: SweepSpec, settings: Settings, backend: str = "auto", probe: bool = True, key: str = ""
) -> SweepSubmission:
    """Resolve the target and choose the backend: sweeps are Slurm job arrays."""
    if spec.roles:  # a config file's is refused by validation; an estimator given to a HyperDriveConfig, here
        raise ConfigError([Problem(f"roles + {key or 'hyperdrive'}", NO_SWEEP, sorted(spec.roles))])
    target = resolve_target(spec, settings.target_files)
    chosen, why = choose_backend(backend, target.backend, settings, probe)
    if chosen != "slurm":
        raise UsageError(
            f"a sweep runs its trials as a Slurm job array, and the backend is {chosen!r} ({why}); "
            "sweeps on the local backend are not supported: submit it where Slurm answers, or drop the "
            f"{key or 'hyperdrive'}: block to run one trial's job"
        )
    if sweep.sampling == "bayesian" and importlib.util.find_spec("optuna") is None:
        raise ConfigError(
            [
                Problem(
                    f"{key or 'hyperdrive'}.hyperparameter_sampling.type",
                    "bayesian sampling needs Optuna: pip install 'hpc_tf[bayesian]'",
                    "bayesian",
                )
            ]
        )
    return SweepSubmission(spec, sweep, target, chosen, why, key or "hyperdrive")


def metric_warning(spec: EstimatorSpec, sweep: SweepSpec, key: str = "hyperdrive") -> str:
    """A warning when nothing in source_directory seems to log the primary metric (HyperDrive's users meet
    this only as "no metric with the primary metric name": the policy never applies, `best` has nothing).

    Looked for: a metric_patterns key, `MetricsLogger` (it logs Keras's own names, val_accuracy, ...), or the
    name as a string literal in a Python file (the first 500 files of at most 1 MiB)."""
    name = sweep.primary_metric_name
    if name in spec.metric_patterns:
        return ""
    quoted = (f'"{name}"', f"'{name}'")
    for count, path in enumerate(Path(spec.source_directory).rglob("*.py")):
        if count >= 500:
            return ""
        try:
            if path.stat().st_size > 2**20:
                continue
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if "MetricsLogger" in text or any(q in text for q in quoted):
            return ""
    return (
        f"{key}.primary_metric_name {name!r} appears in no Python file of source_directory and in no "
        "metric_patterns key: the trials must log it (hpc_tf.log, hpc_tf.keras.MetricsLogger, or a "
        "metric_patterns regex) or the policy never applies and `sweep best` finds nothing"
    )


def render_chunk(sub: SweepSubmission, settings: Settings, chunk_index: int, record: SweepRecord) -> str:
    """Array `chunk_index`'s job script, waiting for the array before it (so the throttle holds across them)."""
    chunk = record.chunks[chunk_index]
    after = record.chunks[chunk_index - 1].job_id if chunk_index else None
    plan = array_plan(
        sub.spec,
        sub.target.options,
        sys.executable,
        package_root(),
        chunk,
        record.max_concurrent_runs,
        after,
        os.geteuid() == 0,
    )
    return render_script(plan, settings.template_dir, str(settings.template_cache))


def first_script(sub: SweepSubmission, settings: Settings) -> str:
    """What `render` shows for a sweep: the first array's script, on a cluster with Slurm's default limits."""
    record = new_record(sub, "<sweep id>", 0, None, "")
    return render_chunk(sub, settings, 0, record)


def new_record(
    sub: SweepSubmission,
    sweep_id: str,
    seed: int,
    max_array_size: int | None,
    python: str,
    max_array_tasks: int | None = None,
    source: str = "",
) -> SweepRecord:
    sweep = sub.sweep
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    return SweepRecord(
        sweep_id=sweep_id,
        experiment=sub.spec.experiment,
        backend=sub.backend,
        sampling=sweep.sampling,
        seed=seed,
        trial_count=sweep.trial_count,
        primary_metric_name=sweep.primary_metric_name,
        primary_metric_goal=sweep.primary_metric_goal,
        parameter_space=msgspec.to_builtins(sweep.parameter_space),
        policy=msgspec.to_builtins(sweep.policy) if sweep.policy else None,
        max_concurrent_runs=sweep.max_concurrent_runs,
        max_duration_minutes=sweep.max_duration_minutes,
        max_array_size=max_array_size,
        max_array_size_source=source,
        chunks=plan_chunks(sweep.trial_count, max_array_size, max_array_tasks),
        entry=entry_only(sub.spec, python) if python else [],
        script_params=dict(sub.spec.script_params),
        submit_time=now.isoformat(),
        deadline=(now + _dt.timedelta(minutes=sweep.max_duration_minutes)).isoformat(),
    )


def submit_sweep(sub: SweepSubmission, settings: Settings) -> SweepDir:
    """Draw the trials, write the sweep directory, sbatch its arrays; return the sweep directory."""
    from ..backends.slurm import SlurmBackend

    limits = SlurmBackend(settings).start_array_limits()  # answers while submitit is imported

    from ..backends.slurm_submit import sbatch
    from ..runs.snapshot import copy_snapshot, plan_snapshot
    from ..runs.submit import job_environment

    spec, sweep = sub.spec, sub.sweep
    runs_dir = settings.runs_dir.absolute()
    snap = plan_snapshot(Path(spec.source_directory), [runs_dir], int(settings.snapshot_max_mb * 2**20))
    python, in_job, _ = job_environment(spec, settings)
    seed = sweep.seed if sweep.seed is not None else int.from_bytes(os.urandom(4), "big") % 2**31
    trials = draw_trials(sweep, seed) if sweep.sampling != "bayesian" else []
    size, tasks, source = limits()
    # Everything that can be worked out is, before the directory exists: a value that cannot be written, a deadline
    # past what a date can hold, a template that fails, leave no sweep directory behind.
    record = new_record(sub, "", seed, size, python, tasks, source)
    config_text = _config_text(sub)
    job = job_record(spec, "", "slurm", python, in_job, settings.tf_config_env_max)
    first = render_chunk(sub, settings, 0, record)
    try:
        sweep_dir = SweepDir.create(runs_dir, spec.experiment)
    except OSError as exc:
        raise SubmissionError(f"cannot create a sweep directory under {runs_dir}: {exc.strerror or exc}") from None
    try:
        record = msgspec.structs.replace(record, sweep_id=sweep_dir.sweep_id)
        sweep_dir.logs.mkdir()
        copy_snapshot(snap, sweep_dir.snapshot)
        sweep_dir.write_trials(trials)
        write_atomic(sweep_dir.config_yaml, config_text, SECRET_MODE, durable=False)
        sweep_dir.write_job(msgspec.structs.replace(job, run_id=sweep_dir.sweep_id))
        sweep_dir.write(record, durable=False)
    except BaseException as exc:  # nothing is queued yet: a half-made sweep would only mislead `sweep status`
        shutil.rmtree(sweep_dir.path, ignore_errors=True)
        if isinstance(exc, (OSError, UnicodeError)):
            raise SubmissionError(f"cannot write the sweep directory {sweep_dir.path}: {exc}") from None
        raise
    for k in range(len(record.chunks)):
        try:
            script = first if k == 0 else render_chunk(sub, settings, k, record)
            write_atomic(sweep_dir.script(k), script, durable=False)
            job_id = sbatch(sweep_dir.path, sweep_dir.submitit_folder, sweep_dir.script(k), script)
        except (HpcTfError, OSError) as exc:
            raise _failed(sweep_dir, record, k, exc) from None
        record = sweep_dir.update(partial(st.chunk_queued, index=k, job_id=job_id))
    return sweep_dir


def _failed(sweep_dir: SweepDir, record: SweepRecord, k: int, exc: BaseException) -> HpcTfError:
    """Record a failed sbatch; the error names the arrays already queued (they are left to run)."""
    chunk = record.chunks[k]
    said = str(exc) if isinstance(exc, HpcTfError) else f"{type(exc).__name__}: {exc}"
    message = (
        f"array {k + 1} of {len(record.chunks)} (trials {chunk.offset}-{chunk.offset + chunk.count - 1}) "
        f"was not submitted: {said}"
    )
    done = st.submitted_ids(record.chunks)
    if done:
        message += (
            f"\nalready submitted and queued: array job(s) {', '.join(done)}; "
            f"`python -m hpc_tf sweep cancel {sweep_dir.sweep_id}` cancels them"
        )
    try:
        sweep_dir.update(lambda r: st.submission_failed(r, message))
    except (OSError, HpcTfError):
        pass
    error = SubmissionError(message, run_dir=str(sweep_dir.path))
    error.exit_status = getattr(exc, "exit_status", 1)
    return error


def _config_text(sub: SweepSubmission) -> str:
    from ..config.strict_yaml import dump as dump_yaml

    resolved = msgspec.to_builtins(sub.spec)
    resolved[sub.sweep_key] = msgspec.to_builtins(sub.sweep)
    resolved["resolved"] = {"backend": sub.backend, "target": sub.target.name, "target_source": sub.target.source}
    text = dump_yaml(resolved)
    return text
