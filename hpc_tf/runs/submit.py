"""Submitting a job: `prepare` (resolve the target, choose the backend, render: nothing written) and
`submit` (one transaction: once the run directory is claimed, any failure ends the run FAILED with
the message, and `runs` lists it).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import msgspec

from .._location import package_root
from ..backends import choose_backend, get_backend
from ..config.targets import Target, resolve_target
from ..core import transitions
from ..core.answers import NoAnswer
from ..core.components import components
from ..core.plan import default_environment, job_record, local_plan, required_packages, slurm_plan, user_environment
from ..core.records import EnvRequest, HetSteps, InJobEnvironment, JobRecord
from ..core.spec import EstimatorSpec
from ..envs.interpreters import InterpreterError, has_distributions, missing_text, own_site_packages, python_version
from ..errors import ConfigError, HpcTfError, Problem, SubmissionError
from ..rundir import SECRET_MODE, RunDir, utc_now, write_atomic
from ..settings import Settings
from .render import render_script
from .snapshot import SnapshotPlan


class Submission(msgspec.Struct, frozen=True):
    """A job ready to go: validated spec, target, chosen backend (and why) and the exact script text."""

    spec: EstimatorSpec
    target: Target
    backend: str
    backend_reason: str
    script: str
    het_steps: HetSteps = "one"  # a heterogeneous job: one step across its components, or one per component


def prepare(spec: EstimatorSpec, settings: Settings, backend: str = "auto", probe: bool = True) -> Submission:
    """Resolve the target, choose the backend and render the script: no disk writes, no submission.

    With `probe=False` (`render`), `auto` and `slurm` render the Slurm script without asking a cluster."""
    target = resolve_target(spec, settings.target_files)
    chosen, why = choose_backend(backend, target.backend, settings, probe)
    root = package_root()
    as_root = os.geteuid() == 0
    het_steps: HetSteps = "one"
    if chosen == "slurm":
        if spec.roles and probe:
            het_steps = cluster_het_steps(settings)
        script_plan = slurm_plan(spec, target.options, sys.executable, root, as_root, het_steps)
    elif spec.roles:
        from ..core.role_checks import NEEDS_SLURM  # role code only for a config with roles

        raise ConfigError([Problem("roles", f"{NEEDS_SLURM} (backend {chosen!r}: {why})", sorted(spec.roles))])
    else:
        script_plan = local_plan(spec, sys.executable, root, as_root)
    script = render_script(script_plan, settings.template_dir, str(settings.template_cache))
    return Submission(spec, target, chosen, why, script, het_steps)


def cluster_het_steps(settings: Settings) -> HetSteps:
    """How this cluster lets a heterogeneous job's steps run ("one" step across the components or one
    "per_component"); a cluster that would never start the job is refused now, not left PENDING."""
    from ..backends.slurm import SlurmBackend
    from ..core.role_checks import site_hetjob

    config = SlurmBackend(settings).site_config()
    if isinstance(config, NoAnswer):  # the submission itself will say what is wrong with the controller
        return "one"
    steps, refusal, _ = site_hetjob(config)
    if refusal is not None:
        raise ConfigError([Problem("roles", refusal, config.get("SchedulerType"))])
    return steps


def submit(sub: Submission, settings: Settings) -> RunDir:
    """Snapshot, write the run directory, submit. Validation already happened in `prepare`."""
    from .snapshot import plan_snapshot

    spec = sub.spec
    runs_dir = settings.runs_dir.absolute()
    snap = plan_snapshot(Path(spec.source_directory), [runs_dir], int(settings.snapshot_max_mb * 2**20))
    python, in_job, env_record = job_environment(spec, settings)
    try:
        run = RunDir.create(runs_dir, spec.experiment)
        run.transition(lambda _: transitions.submitted(run.run_id, spec.experiment, sub.backend, utc_now()))
    except OSError as exc:
        raise SubmissionError(f"cannot create a run directory under {runs_dir}: {exc.strerror or exc}") from None
    try:
        _write_run(run, sub, snap, _job_record(sub, run.run_id, python, in_job, settings), env_record)
        job_id = get_backend(sub.backend, settings).submit(run, sub.script)
    except BaseException as exc:
        message = str(exc) if isinstance(exc, HpcTfError) else f"{type(exc).__name__}: {exc}"
        _fail(run, message)
        if isinstance(exc, HpcTfError):
            raise
        if isinstance(exc, OSError):
            raise SubmissionError(f"submission failed: {exc.strerror or exc}", run_dir=str(run.path)) from None
        raise
    run.transition(lambda s: transitions.queued(s, job_id))
    return run


def _job_record(
    sub: Submission, run_id: str, python: str, in_job: InJobEnvironment | None, settings: Settings
) -> JobRecord:
    record = job_record(sub.spec, run_id, sub.backend, python, in_job, settings.tf_config_env_max)
    if not sub.spec.roles:
        return record
    comps = [c.record for c in components(sub.spec, sub.target.options)]
    return msgspec.structs.replace(record, components=comps, het_steps=sub.het_steps)


def job_environment(
    spec: EstimatorSpec, settings: Settings
) -> tuple[str, InJobEnvironment | None, dict[str, object] | None]:
    """The job's interpreter, the environment the job builds itself (environment_build: job) and the record
    of the one built now (environment_build: submit); its packages are checked when it is known now."""
    python, request = job_interpreter(spec, settings)
    env_record = None
    if request is not None and spec.environment_build == "submit":
        from ..envs.build import ensure

        env_record = ensure(settings.env_cache, request, tool=settings.env_tool)
    if request is None or env_record is not None:
        _check_job_packages(spec, python)
    in_job = (
        None
        if request is None or env_record is not None
        else InJobEnvironment(str(settings.env_cache), request, settings.env_tool)
    )
    return python, in_job, env_record


def _fail(run: RunDir, message: str) -> None:
    """Record a failed submission; a run directory that cannot even take that is left as it is."""
    try:
        run.transition(lambda s: transitions.submit_failed(s, message, utc_now()))
    except (OSError, HpcTfError):
        pass


def _write_run(
    run: RunDir, sub: Submission, snap: SnapshotPlan, job: JobRecord, env_record: dict[str, object] | None
) -> None:
    """Every file of the run directory the job needs, before anything is queued."""
    from ..config.strict_yaml import dump as dump_yaml
    from .snapshot import copy_snapshot

    for folder in (run.logs, run.outputs):
        folder.mkdir()
    copy_snapshot(snap, run.snapshot)
    outputs_link = run.snapshot_outputs
    if outputs_link.exists() or outputs_link.is_symlink():
        raise SubmissionError(
            f"source_directory has an entry named 'outputs' ({outputs_link.name}): it is where "
            "the job's ./outputs goes; rename it or list it in .hpctfignore"
        )
    outputs_link.symlink_to(Path("..") / "outputs")
    resolved = msgspec.to_builtins(sub.spec)
    resolved["resolved"] = {
        "backend": sub.backend,
        "target": sub.target.name,
        "target_source": sub.target.source,
        "target_options": msgspec.to_builtins(sub.target.options),
    }
    config_text = dump_yaml(resolved)
    write_atomic(run.config_yaml, config_text, SECRET_MODE, durable=False)
    run.write_job(job)
    if env_record is not None:
        env_text = msgspec.json.format(msgspec.json.encode(env_record), indent=2) + b"\n"
        write_atomic(run.environment_json, env_text, durable=False)
    write_atomic(run.script, sub.script, durable=False)


def job_interpreter(spec: EstimatorSpec, settings: Settings) -> tuple[str, EnvRequest | None]:
    """The entry script's interpreter, and the environment to build for it (None: the base itself).

    The environment's interpreter path is known from its key before it is built."""
    base = spec.python or sys.executable
    base = shutil.which(base) or base
    kind = spec.environment_kind
    if kind is None:
        return base, None
    from ..envs.build import conda_missing_message, conda_tool, env_key, env_python, normalise_requirement

    if kind == "conda" and conda_tool() is None:
        if spec.conda_packages and not spec.conda_dependencies_file and has_distributions(base, spec.conda_packages):
            return base, None  # nothing to install: the job's interpreter has every package already
        raise ConfigError([Problem("conda_packages", conda_missing_message(), spec.conda_packages)])
    files = spec.pip_requirements_file or spec.conda_dependencies_file
    request = EnvRequest(
        kind=kind,
        packages=tuple(normalise_requirement(p) for p in spec.pip_packages)
        if kind == "pip"
        else tuple(spec.conda_packages),
        requirements=Path(files).read_text() if files else "",
        base_python=os.path.realpath(base),
        base_version=_python_version(base),
        inherit=spec.inherit_base_packages,
        find_links=tuple(spec.pip_find_links),
        no_index=spec.pip_no_index,
        inherit_paths=own_site_packages(base) if spec.inherit_base_packages else (),
    )
    return str(env_python(settings.env_cache, env_key(request))), request


def _python_version(python: str) -> str:
    try:
        return python_version(python)
    except InterpreterError as exc:
        raise ConfigError([Problem("python", f"cannot run it: {exc}", python)]) from None


def _check_job_packages(spec: EstimatorSpec, python: str) -> None:
    """A missing TensorFlow/Horovod in the job's interpreter fails here, before anything is queued.

    Only looks the packages up (importlib.util.find_spec); nothing imports TensorFlow here."""
    env = {**default_environment(spec), **user_environment(spec)}
    try:
        missing = missing_text(python, required_packages(spec.distributed_backend, env))
    except HpcTfError as exc:
        missing = str(exc)
    if missing:
        raise ConfigError(
            [Problem("distributed_backend", f"the job's Python cannot run it: {missing}", spec.distributed_backend)]
        )
