"""Bayesian sampling for sweeps: Optuna's TPE, asked and told from inside the array tasks.

The study lives in `<sweep>/optuna.journal` (Optuna's JournalStorage on a JournalFileBackend with a
JournalFileOpenLock): a shared filesystem is all the array tasks share, and Optuna documents the journal
file, not SQLite, as safe over NFS. Every call opens the journal afresh (no process or module state), so
any number of tasks on any nodes may ask and tell at once; the journal's lock serialises the writes.

Optuna is optional (`pip install 'hpc_tf[bayesian]'`) and imported inside the functions only.
"""

from __future__ import annotations

import hashlib
import math
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

from ..errors import UsageError
from .core.spec import ParamExpr, Scalar

if TYPE_CHECKING:
    from optuna import Study
    from optuna.distributions import BaseDistribution
    from optuna.samplers import BaseSampler
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

JOURNAL_NAME = "optuna.journal"
TRIAL_ATTR = "hpc_tf_trial"  # the Optuna trial's user attr holding the hpc_tf trial index
# A RUNNING trial without TRIAL_ATTR is one whose task died between Optuna's ask and our set_user_attr
# (two journal writes milliseconds apart); past this age nobody will ever tell it, so it is failed.
ORPHAN_GRACE_SECONDS = 600.0
Goal = Literal["maximize", "minimize"]
TellState = Literal["COMPLETE", "PRUNED", "FAIL"]


def _optuna() -> Any:
    """The optuna module, or the UsageError that says how to install it."""
    try:
        import optuna
    except ImportError as exc:
        raise UsageError("bayesian sampling needs Optuna: pip install 'hpc_tf[bayesian]'") from exc
    return optuna


def _storage(sweep_dir: Path) -> BaseStorage:
    """The sweep's journal storage (created on first use). `optuna.storages.journal` exists from Optuna 4.0."""
    optuna = _optuna()
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = str(Path(sweep_dir) / JOURNAL_NAME)
    storage: BaseStorage = optuna.storages.JournalStorage(JournalFileBackend(path, JournalFileOpenLock(path)))
    return storage


def _load(sweep_dir: Path, study_name: str) -> tuple[Study, BaseStorage] | None:
    """The existing study and its storage, or None when no task has created it yet (then nothing is written)."""
    if not (Path(sweep_dir) / JOURNAL_NAME).exists():
        return None
    optuna, storage = _optuna(), _storage(sweep_dir)
    try:  # RandomSampler: telling and reporting need no model, and it warns about nothing
        study: Study = optuna.load_study(
            study_name=study_name, storage=storage, sampler=optuna.samplers.RandomSampler()
        )
    except KeyError:
        return None
    return study, storage


def _integral(q: float | None) -> bool:  # an integral q makes ints, as hpc_tf.sweeps.core.sampling does
    return q is not None and float(q).is_integer()


def distributions(space: dict[str, ParamExpr]) -> dict[str, BaseDistribution]:
    """The Optuna distribution of each parameter (same keys: the script flags).

    quniform(a, b, q) yields multiples of q (HyperDrive's round(x / q) * q): its grid is the multiples
    that rounding reaches from (a, b), i.e. a … b step q when a and b are multiples of q; an integral q
    gives an IntDistribution (ints, as hpc_tf.sweeps.core.sampling draws them). log-uniform bounds are in log
    space: (exp(a), exp(b)). Optuna refuses log with step, so qloguniform is a log float rounded after.
    """
    _optuna()
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, BaseDistribution] = {}
    for name, expr in space.items():
        kind = expr.kind
        if kind == "choice":
            out[name] = CategoricalDistribution(list(expr.values))
        elif kind == "randint":
            assert expr.upper is not None
            out[name] = IntDistribution(0, expr.upper - 1)
        elif kind in ("uniform", "loguniform", "qloguniform"):
            assert expr.low is not None and expr.high is not None
            log = kind != "uniform"
            low, high = (math.exp(expr.low), math.exp(expr.high)) if log else (expr.low, expr.high)
            out[name] = FloatDistribution(low, high, log=log)
        elif kind == "quniform":
            assert expr.low is not None and expr.high is not None and expr.q is not None
            # the k that round(x / q) reaches for x in (low, high)
            k_low = math.floor(expr.low / expr.q + 0.5)
            k_high = max(k_low, math.ceil(expr.high / expr.q - 0.5))
            if _integral(expr.q):
                out[name] = IntDistribution(k_low * int(expr.q), k_high * int(expr.q), step=int(expr.q))
            else:
                out[name] = FloatDistribution(_clean(k_low * expr.q), _clean(k_high * expr.q), step=expr.q)
        else:
            raise ValueError(f"{name}: {expr.text()} cannot be sampled by Bayesian optimization")
    return out


def _clean(value: float) -> float:
    """A multiple of q without the binary noise of k·q (0.30000000000000004 → 0.3)."""
    return float(f"{value:.15g}")


def _external(space: dict[str, ParamExpr], params: dict[str, Any]) -> dict[str, Scalar]:
    """The values the script gets: qloguniform rounded to q, quantized floats cleaned, ints as int."""
    out: dict[str, Scalar] = {}
    for name, expr in space.items():
        value = params[name]
        if expr.kind == "qloguniform":
            assert expr.q is not None
            value = round(value / expr.q) * expr.q
            value = int(value) if _integral(expr.q) else _clean(value)
        elif expr.kind == "quniform":
            value = int(value) if _integral(expr.q) else _clean(value)
        elif expr.kind == "randint":
            value = int(value)
        out[name] = value
    return out


def trial_seed(seed: int, trial_index: int) -> int:
    """The sampler seed of one hpc_tf trial: a 32-bit hash of (sweep seed, trial index).

    Every ask runs in a fresh process with a fresh sampler. Seeded alike, all of them would draw the same
    random numbers: every startup trial (TPE's RandomSampler) would get identical params, and TPE's
    candidate draws would repeat too. Deriving the seed per trial keeps trial i reproducible for a given
    study history while making trials differ; hashing (not seed + i) keeps sweeps seeded s and s+1 from
    sharing shifted streams.
    """
    digest = hashlib.blake2b(f"{seed}:{trial_index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


def _sampler(seed: int, trial_index: int, n_params: int) -> BaseSampler:
    """TPE with the constant liar (running trials count as bad, so concurrent asks spread out) and
    multivariate set explicitly: its default differs between Optuna 4 (False) and 5 (True)."""
    optuna = _optuna()
    with warnings.catch_warnings():  # Optuna 4 flags both arguments as experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler: BaseSampler = optuna.samplers.TPESampler(
            seed=trial_seed(seed, trial_index),
            constant_liar=True,
            multivariate=True,
            n_startup_trials=max(10, 2 * n_params),
        )
    return sampler


def ask(
    sweep_dir: Path,
    study_name: str,
    space: dict[str, ParamExpr],
    goal: Goal,
    seed: int,
    trial_index: int,
    is_final: Callable[[int], bool],
) -> tuple[int, dict[str, Scalar]]:
    """Draw the params of hpc_tf trial `trial_index`: (Optuna trial number, {flag: value}).

    Creates the study on first use. Fails stale RUNNING trials first (their history would otherwise
    count as running forever under the constant liar). A requeued task asking again for a trial that
    still has a RUNNING Optuna trial gets that trial back, with the same params.
    """
    optuna = _optuna()
    dists = distributions(space)
    storage, sampler = _storage(sweep_dir), _sampler(seed, trial_index, len(space))
    try:  # load first: create_study(load_if_exists=True) logs "Using an existing study" in every task
        study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler)
    except KeyError:  # the first task; tasks starting together race, and load_if_exists settles it
        study = optuna.create_study(
            study_name=study_name, storage=storage, sampler=sampler, direction=goal, load_if_exists=True
        )
    if study.direction.name.lower() != goal:
        raise UsageError(f"study {study_name!r} in {sweep_dir} was created to {study.direction.name.lower()}")
    _fail_stale(study, lambda i: i != trial_index and is_final(i))
    for old in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if old.user_attrs.get(TRIAL_ATTR) != trial_index:
            continue
        if old.distributions == dists:
            return old.number, _external(space, old.params)
        _set_failed(study, old)  # killed half-way through its suggestions, or asked with another space
    trial = study.ask(dists)
    trial.set_user_attr(TRIAL_ATTR, trial_index)
    return trial.number, _external(space, trial.params)


def _finished_error() -> type[Exception]:
    """What the journal raises on updating a finished trial (early Optuna 4.x: a plain RuntimeError)."""
    error: type[Exception] = getattr(_optuna().exceptions, "UpdateFinishedTrialError", RuntimeError)
    return error


def _set_failed(study: Study, trial: FrozenTrial) -> bool:
    """FAIL one trial; False when another process finished it first."""
    optuna = _optuna()
    try:
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
    except _finished_error():
        return False
    return True


def _fail_stale(study: Study, is_final: Callable[[int], bool]) -> list[int]:
    optuna = _optuna()
    failed = []
    now = time.time()
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        index = trial.user_attrs.get(TRIAL_ATTR)
        if index is None:
            started = trial.datetime_start.timestamp() if trial.datetime_start else now
            stale = now - started > ORPHAN_GRACE_SECONDS
        else:
            stale = is_final(int(index))
        if stale and _set_failed(study, trial):
            failed.append(trial.number)
    return failed


def fail_stale(sweep_dir: Path, study_name: str, is_final: Callable[[int], bool]) -> list[int]:
    """FAIL every RUNNING Optuna trial whose hpc_tf trial has ended (`is_final(index)`); the numbers failed.

    A task killed by Slurm (time limit, scancel, node failure) never tells, and Optuna has no heartbeat
    for journal storage, so its trial would stay RUNNING forever (optuna#1641); the hpc_tf run's status
    is the source of truth. Also fails a RUNNING trial with no hpc_tf index after ORPHAN_GRACE_SECONDS.
    """
    loaded = _load(sweep_dir, study_name)
    return [] if loaded is None else _fail_stale(loaded[0], is_final)


def tell(sweep_dir: Path, study_name: str, number: int, value: float | None, state: TellState) -> None:
    """Record how Optuna trial `number` ended. Idempotent: telling a finished trial does nothing.

    COMPLETE without a finite value becomes FAIL (Optuna refuses NaN and None). PRUNED takes no value in
    Optuna, so a finite `value` is reported as the trial's last intermediate value, which Optuna then
    keeps as the pruned trial's value (TPE uses pruned trials too).
    """
    optuna = _optuna()
    loaded = _load(sweep_dir, study_name)
    if loaded is None:
        raise UsageError(f"no Optuna study {study_name!r} in {Path(sweep_dir) / JOURNAL_NAME}")
    study, storage = loaded
    TrialState = optuna.trial.TrialState
    finite = value is not None and math.isfinite(value)
    try:
        trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study_name), number)
        trial = storage.get_trial(trial_id)
        if trial.state.is_finished():
            return
        if state == "COMPLETE" and finite:
            study.tell(number, value, skip_if_finished=True)
        elif state == "PRUNED":
            if finite:
                assert value is not None
                step = 0 if trial.last_step is None else trial.last_step + 1
                storage.set_trial_intermediate_value(trial_id, step, value)
            study.tell(number, state=TrialState.PRUNED, skip_if_finished=True)
        else:
            study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
    except _finished_error():
        pass  # another process (a stale-trial sweep) finished it in between
    except KeyError as exc:
        raise UsageError(f"no trial {number} in Optuna study {study_name!r}") from exc


def summary(sweep_dir: Path, study_name: str, space: dict[str, ParamExpr] | None = None) -> list[dict[str, Any]]:
    """Every Optuna trial as {number, state, params, value, hpc_tf_trial}, by number; [] before the first ask.

    `params` are Optuna's stored values; given the sweep's `space` they are converted as `ask` returned
    them (qloguniform rounded). A trial killed half-way through its suggestions may lack some params.
    """
    loaded = _load(sweep_dir, study_name)
    if loaded is None:
        return []
    rows = []
    for trial in loaded[0].get_trials(deepcopy=False):
        params: dict[str, Any] = dict(trial.params)
        if space is not None and set(space) <= set(params):
            params = _external(space, params)
        row = {"number": trial.number, "state": trial.state.name, "params": params, "value": trial.value}
        rows.append(row | {"hpc_tf_trial": trial.user_attrs.get(TRIAL_ATTR)})
    return rows
