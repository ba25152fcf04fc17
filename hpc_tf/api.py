"""The Python API: `TensorFlow` (the estimator) and `Experiment.submit`, returning a `Run` to follow.

    from hpc_tf import TensorFlow, Experiment
    run = Experiment("digits").submit(TensorFlow(source_directory="./src", entry_script="train.py"))
    run.wait_for_completion(show_output=True)

Settings (HPC_TF_* variables) are read once, when an estimator or experiment is made.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import msgspec

from .config.loading import load_config, validate
from .config.targets import Target, resolve_target
from .core.spec import NAME_RE, EstimatorSpec
from .errors import ConfigError, Problem
from .settings import Settings

if TYPE_CHECKING:
    import submitit

    from .hyperdrive import HyperDriveConfig
    from .runs.follow import Run
    from .sweeps.core.spec import SweepSpec
    from .sweeps.run import SweepRun


class TensorFlow:
    """A TensorFlow training job, with the Azure ML estimator's keyword names (see README)."""

    def __init__(self, source_directory: str | Path, entry_script: str, **options: Any) -> None:
        data = {"source_directory": str(source_directory), "entry_script": entry_script, **options}
        self.spec: EstimatorSpec = validate(data, Path.cwd(), "TensorFlow(...)")
        self.settings = Settings.from_env()
        self.sweep: SweepSpec | None = None  # a config file's hyperdrive: block (from_yaml)
        self.sweep_key = ""

    @classmethod
    def from_spec(
        cls,
        spec: EstimatorSpec,
        settings: Settings | None = None,
        sweep: "SweepSpec | None" = None,
        sweep_key: str = "",
    ) -> "TensorFlow":
        est = cls.__new__(cls)
        est.spec, est.settings = spec, settings or Settings.from_env()
        est.sweep, est.sweep_key = sweep, sweep_key
        return est

    @classmethod
    def from_yaml(
        cls, path: str | Path, overrides: Sequence[str] = (), settings: Settings | None = None
    ) -> "TensorFlow":
        spec, sweep, key = load_config(path, overrides)
        return cls.from_spec(spec, settings, sweep, key)

    def target(self) -> Target:
        return resolve_target(self.spec, self.settings.target_files)

    def executor(self, folder: str | Path | None = None, backend: str = "auto") -> "submitit.Executor":
        """A submitit executor configured from this estimator's compute target, for your own functions."""
        from .backends import choose_backend
        from .runs.executor import make_executor

        target = self.target()
        chosen, _ = choose_backend(backend, target.backend, self.settings)
        folder = Path(folder) if folder else self.settings.runs_dir / self.spec.experiment / "submitit"
        return make_executor(self.spec, target, chosen, folder)


class Experiment:
    """A named group of runs under `<runs dir>/<name>/` (the Azure ML Experiment)."""

    def __init__(self, name: str, runs_dir: str | Path | None = None) -> None:
        if not NAME_RE.match(name):
            raise ConfigError(
                [Problem("experiment", "expected letters, digits, '.', '_' and '-'", name, source="Experiment(...)")]
            )
        self.name = name
        self.settings = Settings.from_env(runs_dir=runs_dir)
        self.runs_dir = self.settings.runs_dir

    def submit(self, config: "TensorFlow | HyperDriveConfig", backend: str = "auto") -> "Run | SweepRun":
        """Submit a job (a TensorFlow estimator: returns its Run) or a sweep (a HyperDriveConfig, or an
        estimator loaded from a config with a hyperdrive: block: returns its SweepRun)."""
        from .hyperdrive import HyperDriveConfig

        if isinstance(config, HyperDriveConfig):
            if config.estimator is None:
                raise ConfigError([Problem("estimator", "a HyperDriveConfig needs the TensorFlow estimator it tunes")])
            return self._sweep(config.estimator, config.spec, "hyperdrive", backend)
        if config.sweep is not None:
            return self._sweep(config, config.sweep, config.sweep_key, backend)
        from .runs.follow import Run
        from .runs.submit import prepare, submit

        spec = msgspec.structs.replace(config.spec, experiment=self.name)
        return Run(submit(prepare(spec, self.settings, backend), self.settings), self.settings)

    def _sweep(self, estimator: TensorFlow, sweep: "SweepSpec", key: str, backend: str) -> "SweepRun":
        from .sweeps.run import SweepRun
        from .sweeps.submit import prepare_sweep, submit_sweep

        spec = msgspec.structs.replace(estimator.spec, experiment=self.name)
        sub = prepare_sweep(spec, sweep, self.settings, backend, key=key)
        return SweepRun(submit_sweep(sub, self.settings), self.settings)
