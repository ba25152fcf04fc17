"""A sweep's array task becomes a trial: its own run directory, its hyperparameters, its end told to the sweep.

Every task of an array task's step runs `python -m hpc_tf.job SWEEP_DIR --trial-offset N`; trial
`N + SLURM_ARRAY_TASK_ID` is theirs. The task that wins the `mkdir` of `<sweep id>_<i>/` makes the run
directory (hyperparameters from trials.jsonl, or asked of Optuna); the others wait for its job.json. A
requeued task finds the directory made and reuses it: the same trial, the same hyperparameters.

The entry script gets its hyperparameters as JSON in HPC_TF_HPARAMS; when that is too long for one environment
string (core.envsize), in the trial's `tasks/hparams.json` instead, named by HPC_TF_HPARAMS_FILE, which the script's
interpreter reads back into os.environ["HPC_TF_HPARAMS"] (job/child_site), as a too-long TF_CONFIG is passed.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from pathlib import Path
from typing import Any, Literal, Mapping

import msgspec

from ..core import transitions
from ..core.envsize import HPARAMS, HPARAMS_FILE, MAX_ARG_STRLEN, fits_env
from ..core.records import JobRecord, SweepRecord, TrialInfo
from ..job.context import TaskSetupError
from ..rundir import RESERVE_BYTES, RunDir, utc_now, write_atomic
from .core import transitions as sweep_transitions
from .core.arrays import trial_command
from .sweepdir import SweepDir

WAIT_FOR_TRIAL_SECONDS = 120.0
HPARAMS_NAME = "hparams.json"  # in the trial's tasks/ folder, when HPC_TF_HPARAMS is too long for the environment


def past_deadline(record: SweepRecord) -> bool:
    """Whether the sweep's max_duration_minutes has passed."""
    return sweep_transitions.past_deadline(record, _dt.datetime.now(_dt.timezone.utc))


def end_sweep(sweep: SweepDir, why: str) -> None:
    """Cancel every array of the sweep (pending and running trials, this task included) and say why."""
    from ..backends.slurm import SlurmBackend
    from ..settings import Settings

    record = sweep.update(lambda r: sweep_transitions.stopped(r, why))
    backend = SlurmBackend(Settings.from_env())
    for job_id in sweep_transitions.submitted_ids(record.chunks):
        try:
            backend.cancel(job_id)
        except Exception:
            continue


def open_trial(sweep_path: Path, offset: int, env: Mapping[str, str]) -> RunDir | None:
    """This array task's trial run directory (made by the first of its tasks); None when the sweep's time
    is up (the task then ends the whole sweep instead of starting a trial)."""
    sweep = SweepDir(sweep_path)
    record = sweep.read()
    try:
        task, array_job = int(env["SLURM_ARRAY_TASK_ID"]), env["SLURM_ARRAY_JOB_ID"]
    except (KeyError, ValueError):
        raise TaskSetupError("SLURM_ARRAY_TASK_ID is not set: a sweep's job runs as a Slurm job array") from None
    if past_deadline(record):
        end_sweep(sweep, f"max_duration_minutes ({record.max_duration_minutes}) reached at {utc_now()}")
        return None
    index = offset + task
    if not 0 <= index < record.trial_count:
        raise TaskSetupError(f"array task {task} + offset {offset} is not a trial of this sweep")
    run = sweep.trial(index)
    try:
        run.path.mkdir()
    except FileExistsError:
        return _wait_for(run)
    _make_trial(sweep, record, run, index, f"{array_job}_{task}")
    return run


def _wait_for(run: RunDir) -> RunDir:
    deadline = time.monotonic() + WAIT_FOR_TRIAL_SECONDS
    while not run.job_json.exists():
        if time.monotonic() > deadline:
            raise TaskSetupError(f"{run.path} was begun by another task but never finished (no job.json)")
        time.sleep(0.05)
    return run


def _make_trial(sweep: SweepDir, record: SweepRecord, run: RunDir, index: int, array_task: str) -> None:
    """Everything of the trial's run directory; job.json last (the other tasks wait for it)."""
    write_atomic(run.reserve, b"\0" * RESERVE_BYTES, durable=False)
    run.transition(
        lambda _: transitions.trial_created(
            run.run_id, record.experiment, record.backend, utc_now(), array_task, record.sweep_id, index
        )
    )
    hyperparameters, optuna_trial = _hyperparameters(sweep, record, index)
    for folder in (run.logs, run.outputs, run.snapshot):
        folder.mkdir(exist_ok=True)
    for entry in sweep.snapshot.iterdir():
        if entry.name != "outputs":
            (run.snapshot / entry.name).symlink_to(entry)
    run.snapshot_outputs.symlink_to(Path("..") / "outputs")
    base: JobRecord = sweep.read_job()
    info = TrialInfo(
        sweep_id=record.sweep_id,
        sweep_dir=str(sweep.path),
        index=index,
        hyperparameters=hyperparameters,
        array_task=array_task,
        optuna_trial=optuna_trial,
    )
    command = trial_command(record.entry, record.script_params, hyperparameters)
    run.write_job(msgspec.structs.replace(base, run_id=run.run_id, command=command, trial=info))


def _hyperparameters(sweep: SweepDir, record: SweepRecord, index: int) -> tuple[dict[str, Any], int | None]:
    """Drawn at submit time (random, grid), or asked of Optuna now (bayesian)."""
    if record.sampling != "bayesian":
        return sweep.read_trials()[index], None
    from . import bayesian as bayes
    from .core.spec import ParamExpr

    space = {flag: msgspec.convert(expr, ParamExpr) for flag, expr in record.parameter_space.items()}
    number, params = bayes.ask(
        sweep.path,
        record.sweep_id,
        space,
        "minimize" if record.primary_metric_goal == "minimize" else "maximize",
        record.seed,
        index,
        lambda i: _trial_final(sweep, i),
    )
    return params, number


def _trial_final(sweep: SweepDir, index: int) -> bool:
    try:
        return sweep.trial(index).read_status().final
    except Exception:
        return True


def hparams_file(run: RunDir) -> Path:
    """Where a trial's hyperparameters are when they are too long for the environment."""
    return run.tasks_dir / HPARAMS_NAME


def trial_environment(job: JobRecord, run: RunDir, limit: int = MAX_ARG_STRLEN) -> dict[str, str]:
    """What a trial's entry script is told besides a run's variables: its sweep, number and hyperparameters (in
    HPC_TF_HPARAMS, or past `limit` bytes in a file named by HPC_TF_HPARAMS_FILE; every task writes the same file,
    atomically, so whichever task comes first the script finds it whole)."""
    if job.trial is None:
        return {}
    record = SweepDir(job.trial.sweep_dir).read()
    out = {
        "HPC_TF_SWEEP_DIR": job.trial.sweep_dir,
        "HPC_TF_SWEEP_ID": job.trial.sweep_id,
        "HPC_TF_TRIAL_INDEX": str(job.trial.index),
        "HPC_TF_PRIMARY_METRIC": record.primary_metric_name,
    }
    text = json.dumps(job.trial.hyperparameters)
    if fits_env(HPARAMS, text, limit):
        return {**out, HPARAMS: text}
    path = hparams_file(run)
    if not path.is_file():
        run.tasks_dir.mkdir(exist_ok=True)
        write_atomic(path, text, durable=False)  # the script's input, also in job.json
    return {**out, HPARAMS_FILE: str(path)}


def trial_ended(run: RunDir, job: JobRecord, exit_code: int) -> None:
    """Rank 0, after the entry script ended: tell Optuna the trial's result, write its TensorBoard HParams.

    Neither may fail the trial: what they could not do is said in the task's launcher log (stderr)."""
    import sys

    from .early_stop import read_history

    assert job.trial is not None
    info = job.trial
    history = read_history(run.primary_metric_file)
    stopped = run.early_stop_file.exists()
    try:
        record = SweepDir(info.sweep_dir).read()
        if info.optuna_trial is not None:
            from . import bayesian as bayes

            state: Literal["COMPLETE", "PRUNED", "FAIL"] = (
                "PRUNED" if stopped else ("COMPLETE" if exit_code == 0 else "FAIL")
            )
            bayes.tell(Path(info.sweep_dir), info.sweep_id, info.optuna_trial, history[-1] if history else None, state)
        _write_hparams(record, info, run, history, exit_code, stopped)
    except Exception as exc:
        print(
            f"hpc_tf: trial {run.run_id}: could not report to the sweep: {type(exc).__name__}: {exc}", file=sys.stderr
        )


def _write_hparams(
    record: SweepRecord, info: TrialInfo, run: RunDir, history: list[float], exit_code: int, stopped: bool
) -> None:
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        return  # `python -m hpc_tf sweep hparams SWEEP` writes them from outside
    from .core.spec import ParamExpr
    from .report import TrialResult, write_hparams

    space = {flag: msgspec.convert(expr, ParamExpr) for flag, expr in record.parameter_space.items()}
    state = "EARLY_TERMINATED" if stopped and exit_code == 0 else ("COMPLETED" if exit_code == 0 else "FAILED")
    result = TrialResult(
        index=info.index, trial_id=run.run_id, state=state, hyperparameters=info.hyperparameters, history=history
    )
    write_hparams(
        SweepDir(info.sweep_dir).tensorboard, space, record.primary_metric_name, record.primary_metric_goal, [result]
    )
