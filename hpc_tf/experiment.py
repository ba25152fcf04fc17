"""The Python API: `TensorFlow` (the estimator), `Experiment.submit`, and `Run` (status, wait, cancel)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import msgspec

from . import plan as _plan
from .errors import ConfigError, Problem
from .runs import Run
from .spec import EstimatorSpec, load_spec, validate
from .targets import Target, resolve_target, search_path

DEFAULT_RUNS_DIR = "runs"


def cache_dir(env: Mapping[str, str]) -> str:
    """hpc_tf's cache ($XDG_CACHE_HOME/hpc_tf, default ~/.cache/hpc_tf): compiled templates."""
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".cache")
    return str(Path(base) / "hpc_tf" / "templates")


def runs_dir_from(explicit: str | Path | None, env: Mapping[str, str]) -> Path:
    """--runs-dir, then HPC_TF_RUNS_DIR, then ./runs."""
    return Path(explicit or env.get("HPC_TF_RUNS_DIR") or DEFAULT_RUNS_DIR)


class TensorFlow:
    """A TensorFlow training job, with the Azure ML estimator's keyword names (see README)."""

    def __init__(self, source_directory: str | Path, entry_script: str, **options: Any) -> None:
        data = {"source_directory": str(source_directory), "entry_script": entry_script, **options}
        self.spec: EstimatorSpec = validate(data, Path.cwd(), "TensorFlow(...)")

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: Sequence[str] = ()) -> "TensorFlow":
        est = cls.__new__(cls)
        est.spec = load_spec(path, overrides)
        return est

    def target(self, env: Mapping[str, str] | None = None) -> Target:
        return resolve_target(self.spec, search_path(os.environ if env is None else env))

    def executor(self, folder: str | Path | None = None, backend: str = "auto") -> Any:
        """A submitit executor configured from this estimator's compute target, for your own functions."""
        from .backends import choose_backend
        from .executors import make_executor

        target = self.target()
        chosen, _ = choose_backend(backend, target.backend)
        folder = Path(folder) if folder else runs_dir_from(None, os.environ) / self.spec.experiment / "submitit"
        return make_executor(self.spec, target, chosen, folder)


@dataclass
class Submission:
    """A job ready to go: validated spec, target, chosen backend and the exact script text."""

    spec: EstimatorSpec
    target: Target
    backend: str
    why: str
    script: str


def prepare(spec: EstimatorSpec, backend: str = "auto", env: Mapping[str, str] | None = None) -> Submission:
    """Resolve the target, choose the backend and render the script: no disk writes, no submission."""
    from .backends import choose_backend, package_root
    from .render import render_script

    env = os.environ if env is None else env
    target = resolve_target(spec, search_path(env))
    chosen, why = choose_backend(backend, target.backend)
    root = package_root()
    as_root = os.geteuid() == 0
    if chosen == "slurm":
        script_plan = _plan.slurm_plan(spec, target, sys.executable, root, as_root)
    else:
        script_plan = _plan.local_plan(spec, sys.executable, root, as_root)
    script = render_script(script_plan, env.get("HPC_TF_TEMPLATE_DIR"), cache_dir(env))
    return Submission(spec, target, chosen, why, script)


def submit(sub: Submission, runs_dir: str | Path) -> "Run":
    """Snapshot, write the run directory, submit. Validation already happened in `prepare`."""
    import yaml

    from .backends import get_backend
    from .errors import SubmissionError
    from .rundir import RunDir, utc_now
    from .snapshot import DEFAULT_MAX_MB, copy_snapshot, plan_snapshot

    spec = sub.spec
    runs_dir = Path(runs_dir).absolute()
    max_mb = float(os.environ.get("HPC_TF_SNAPSHOT_MAX_MB", DEFAULT_MAX_MB))
    snap = plan_snapshot(Path(spec.source_directory), [runs_dir], int(max_mb * 2**20))
    python, request, env_root = job_interpreter(spec, os.environ)
    record = None
    if request is not None and spec.environment_build == "submit":
        from .environments import ensure

        record = ensure(env_root, request)
    if request is None or record is not None:
        _check_job_packages(spec, python)
    run = RunDir.create(runs_dir, spec.experiment)
    copy_snapshot(snap, run.snapshot)
    (run.snapshot / "outputs").symlink_to(Path("..") / "outputs")
    resolved = msgspec.to_builtins(spec)
    resolved["resolved"] = {"backend": sub.backend, "target": sub.target.name, "target_source": sub.target.source,
                            "target_options": msgspec.to_builtins(sub.target.options)}
    run.config_yaml.write_text(yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True), encoding="utf-8")
    in_job = None if request is None or record is not None else {"root": str(env_root), "request": msgspec.to_builtins(request)}
    run.write_json(run.job_json, _plan.job_record(spec, run.run_id, sub.backend, python, in_job))
    if record is not None:
        run.write_json(run.path / "environment.json", record)
    run.script.write_text(sub.script, encoding="utf-8")
    run.update_status(run_id=run.run_id, experiment=spec.experiment, backend=sub.backend, state="PENDING",
                      job_id=None, exit_code=None, nodes=[], submit_time=utc_now(), start_time=None, end_time=None)
    try:
        job_id = get_backend(sub.backend).submit(run, sub.script)
    except SubmissionError as exc:
        run.update_status(state="FAILED", final=True, end_time=utc_now(), message=str(exc))
        raise
    run.update_status(job_id=job_id)
    return Run(run)


def job_interpreter(spec: EstimatorSpec, env: Mapping[str, str]) -> tuple[str, Any, Path | None]:
    """The entry script's interpreter, and the environment to build for it (None: the base itself).

    The environment's interpreter path is known from its key before it is built.
    """
    import shutil

    base = spec.python or sys.executable
    base = shutil.which(base) or base
    kind = spec.environment_kind
    if kind is None:
        return base, None, None
    from .environments import (EnvRequest, cache_root, conda_missing_message, conda_tool, env_key, env_python,
                               normalise_requirement)

    if kind == "conda" and conda_tool() is None:
        raise ConfigError([Problem("conda_packages", conda_missing_message(), spec.conda_packages, True)])
    files = spec.pip_requirements_file or spec.conda_dependencies_file
    request = EnvRequest(
        kind=kind,
        packages=tuple(normalise_requirement(p) for p in spec.pip_packages) if kind == "pip" else tuple(spec.conda_packages),
        requirements=Path(files).read_text() if files else "",
        base_python=os.path.realpath(base), base_version=_python_version(base), inherit=spec.inherit_base_packages,
        find_links=tuple(spec.pip_find_links), no_index=spec.pip_no_index)
    root = cache_root(env)
    return str(env_python(root, env_key(request))), request, root


def _python_version(python: str) -> str:
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        return sys.version
    import subprocess

    proc = subprocess.run([python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ConfigError([Problem("python", f"cannot run it: {proc.stderr.strip()[-300:]}", python, True)])
    return proc.stdout.strip()


def _check_job_packages(spec: EstimatorSpec, python: str) -> None:
    """A missing TensorFlow/Horovod in the job's interpreter fails here, before anything is queued.

    Only looks the packages up (importlib.util.find_spec); nothing imports TensorFlow here.
    """
    from .runtime import TaskSetupError, check_packages

    env = {**_plan.default_environment(spec), **_plan.user_environment(spec)}
    try:
        check_packages({"distributed_backend": spec.distributed_backend, "python": python}, env)
    except TaskSetupError as exc:
        raise ConfigError([Problem("distributed_backend", f"the job's Python cannot run it: {exc}", spec.distributed_backend, True)]) from None


class Experiment:
    """A named group of runs under `<runs dir>/<name>/` (the Azure ML Experiment)."""

    def __init__(self, name: str, runs_dir: str | Path | None = None) -> None:
        from .spec import NAME_RE

        if not NAME_RE.match(name):
            raise ConfigError([Problem("experiment", "expected letters, digits, '.', '_' and '-'", name, True, "Experiment(...)")])
        self.name = name
        self.runs_dir = runs_dir_from(runs_dir, os.environ)

    def submit(self, estimator: TensorFlow, backend: str = "auto") -> "Run":
        spec = msgspec.structs.replace(estimator.spec, experiment=self.name)
        return submit(prepare(spec, backend), self.runs_dir)
