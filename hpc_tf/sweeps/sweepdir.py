"""A sweep's directory `<runs dir>/<experiment>/<sweep_id>/`: every path in it, and the one module that reads
and writes `sweep.json` (core.records.SweepRecord) and `trials.jsonl`.

Layout:
  sweep.json       the sweep as submitted: sampling, seed, limits, policy, its arrays' job ids  SweepRecord
  trials.jsonl     trial i → its hyperparameters (random and grid: drawn at submit time, line i)
  config.yaml      the resolved config (the job and the hyperdrive block)
  job.json         the job every trial runs (a trial's own job.json adds its flags and TrialInfo)
  job-K.sh         the job script of array K, exactly as submitted
  snapshot/        source_directory, copied once for every trial (a trial's snapshot/ links to it)
  logs/            slurm-A_i.out (Slurm's batch log of each array task), launcher-A_i-T.log
  optuna.journal   bayesian sampling: Optuna's journal storage (never SQLite)
  tensorboard/     TensorBoard HParams: `tensorboard --logdir <sweep dir>`
Trial i is an ordinary run directory beside it, `<runs dir>/<experiment>/<sweep_id>_<i>/` (core.sweep_plan).
"""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Any, Callable

import msgspec

from ..core.records import JobRecord, SweepRecord
from ..errors import RunError
from ..rundir import SECRET_MODE, RunDir, _locked, _read, claim_new_dir, encode, write_atomic
from .core.arrays import trial_run_id

LOCK_TIMEOUT_SECONDS = 30.0


class SweepDir:
    """Owns every file name of one sweep, and its records."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).absolute()

    @classmethod
    def create(cls, runs_dir: str | Path, experiment: str) -> "SweepDir":
        """A new sweep directory (mkdir is the claim); its id sorts by submit time like a run id."""
        return cls(claim_new_dir(Path(runs_dir).absolute() / experiment, "sweep"))

    @property
    def sweep_id(self) -> str:
        return self.path.name

    @property
    def experiment(self) -> str:
        return self.path.parent.name

    sweep_json = property(lambda self: self.path / "sweep.json")
    trials_jsonl = property(lambda self: self.path / "trials.jsonl")
    config_yaml = property(lambda self: self.path / "config.yaml")
    job_json = property(lambda self: self.path / "job.json")
    snapshot = property(lambda self: self.path / "snapshot")
    logs = property(lambda self: self.path / "logs")
    journal = property(lambda self: self.path / "optuna.journal")
    tensorboard = property(lambda self: self.path / "tensorboard")
    submitit_folder = property(lambda self: self.path / ".submitit")
    plots = property(lambda self: self.path / "plots")
    _lock_path = property(lambda self: self.path / ".sweep.lock")

    def script(self, chunk: int) -> Path:
        return self.path / f"job-{chunk}.sh"

    def trial(self, index: int) -> RunDir:
        """Trial `index`'s run directory (it exists once its array task started)."""
        return RunDir(self.path.parent / trial_run_id(self.sweep_id, index))

    def trial_dirs(self) -> list[RunDir]:
        """The trials that have a run directory, in trial order (see `trial_index`; `strays` has the others)."""
        found: list[tuple[int, RunDir]] = []
        for path in self._named_like_trials():
            index = trial_index(self.sweep_id, path.name)
            if index is not None:
                found.append((index, RunDir(path)))
        return [run for _, run in sorted(found, key=lambda pair: pair[0])]

    def strays(self) -> list[Path]:
        """Entries named `<sweep id>_...` that are no trial's directory (`<sweep id>_²`, `_07`, `_x`)."""
        return sorted(p for p in self._named_like_trials() if trial_index(self.sweep_id, p.name) is None)

    def _named_like_trials(self) -> list[Path]:
        return list(self.path.parent.glob(f"{glob.escape(self.sweep_id)}_*"))

    def exists(self) -> bool:
        return self.sweep_json.is_file()

    # ------------------------------------------------------------------ records
    def read(self) -> SweepRecord:
        return _read(self.sweep_json, SweepRecord)

    def write(self, record: SweepRecord, durable: bool = True) -> None:
        """Durable, but for the first record written before anything is queued (see write_atomic)."""
        write_atomic(self.sweep_json, encode(record), durable=durable)

    def update(self, change: Callable[[SweepRecord], SweepRecord]) -> SweepRecord:
        """Apply one transition (core.sweep_transitions) under the sweep's lock, to the record as it is now."""
        with _locked(self._lock_path, LOCK_TIMEOUT_SECONDS):
            record = self.read()
            new = change(record)
            if new != record:
                self.write(new)
        return new

    def write_job(self, job: JobRecord) -> None:
        """The job every trial runs (a trial's own job.json is this one with its flags and TrialInfo)."""
        write_atomic(self.job_json, encode(job), SECRET_MODE, durable=False)

    def read_job(self) -> JobRecord:
        return _read(self.job_json, JobRecord)

    def write_trials(self, trials: list[dict[str, Any]]) -> None:
        """trials.jsonl: line i is trial i's hyperparameters (inspectable before anything runs)."""
        encode_line = msgspec.json.Encoder().encode
        data = b"".join(encode_line({"trial": i, "hyperparameters": t}) + b"\n" for i, t in enumerate(trials))
        write_atomic(self.trials_jsonl, data, durable=False)

    def read_trials(self) -> list[dict[str, Any]]:
        """Every pre-drawn trial's hyperparameters, in trial order ([] for bayesian sampling)."""
        if not self.trials_jsonl.exists():
            return []
        out = []
        # lines end at "\n" alone: msgspec writes U+0085, U+2028 and U+2029 of a choice value as they are (JSON allows
        # them in a string), and str.splitlines() would cut the line there
        lines = self.trials_jsonl.read_text(encoding="utf-8").split("\n")
        for line in lines[:-1] if lines[-1] == "" else lines:
            try:
                out.append(json.loads(line)["hyperparameters"])
            except (json.JSONDecodeError, KeyError, TypeError):
                raise RunError(f"{self.trials_jsonl} is damaged (line {len(out) + 1})") from None
        return out

    def locked(self, name: str, timeout: float = LOCK_TIMEOUT_SECONDS) -> Any:
        """An exclusive lock of this sweep's (`.NAME.lock`), for work every array task may race to do once."""
        return _locked(self.path / f".{name}.lock", timeout)


def trial_index(sweep_id: str, name: str) -> int | None:
    """The trial number of a folder named `<sweep id>_<n>` (core.arrays.trial_run_id), or None: `n` is
    written in ASCII digits without leading zeros, so `_²` (a digit to str.isdigit, not to int) or `_07`
    never pass for a trial, and no two folders are the same trial."""
    tail = name[len(sweep_id) + 1 :] if name.startswith(f"{sweep_id}_") else ""
    if not (tail.isascii() and tail.isdigit()) or (len(tail) > 1 and tail[0] == "0") or len(tail) > 9:
        return None
    return int(tail)


def find_sweep(text: str, runs_dir: Path) -> SweepDir:
    """A sweep from its directory, its id, or a unique prefix of its id under the runs directory."""
    from ..errors import UsageError

    try:
        given = bool(text) and SweepDir(text).exists()
    except OSError as exc:  # a folder that cannot be searched
        raise RunError(f"cannot read {text}: {exc.strerror or exc}") from None
    if given:
        return SweepDir(text)
    matches = sorted(runs_dir.glob(f"*/{text}*/sweep.json")) if text and "/" not in text and runs_dir.is_dir() else []
    exact = [m for m in matches if m.parent.name == text]
    if exact or len(matches) == 1:
        return SweepDir((exact or matches)[0].parent)
    if matches:
        raise UsageError(f"sweep {text!r} is ambiguous in {runs_dir}: " + ", ".join(m.parent.name for m in matches[:5]))
    raise UsageError(f"no sweep {text!r} (neither a sweep directory nor a sweep id under {runs_dir})")
