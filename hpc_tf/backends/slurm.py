"""The Slurm backend: submitit submits, hpc_tf's template writes the script.

Why a submitit subclass: submitit's `PicklingExecutor` is a template method. It pickles the
in-job call, runs sbatch, parses the job id, returns a `Job` and (later) handles requeue and
arrays. Its subclasses fill in a few hooks; we override exactly two:
  - `_make_submission_file_text`: the script text comes from our Jinja2 template, so it is
    the very script `python -m hpc_tf render` prints (submitit's own generator would quote
    `#SBATCH` values for a shell, which sbatch does not parse that way);
  - `_make_submission_command`: the run directory goes into sbatch's argv (`--chdir`), never
    into the script text.
The command submitit passes in (`python -u -m submitit.core._submit FOLDER`) is rebuilt as an
argument list by `plan.slurm_plan` and quoted once by the renderer.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Sequence

import submitit

from ..errors import SubmissionError
from ..rundir import RunDir
from ..runtime import slurm_task
from .base import JobState

SACCT_DISABLED = "accounting storage is disabled"
_accounting: bool | None = None  # learned once per process


class TemplatedSlurmExecutor(submitit.SlurmExecutor):
    """A submitit SlurmExecutor whose script text and sbatch working directory are given."""

    def __init__(self, folder: Path, script: str, workdir: Path, ntasks: int) -> None:
        super().__init__(folder)
        self._script = script
        self._workdir = workdir
        self._ntasks = ntasks

    def _make_submission_file_text(self, command: str, uid: str) -> str:
        return self._script

    def _make_submission_command(self, submission_file_path: Path) -> list[str]:
        return ["sbatch", f"--chdir={self._workdir}", str(submission_file_path)]

    def _num_tasks(self) -> int:
        return self._ntasks


class SlurmBackend:
    name = "slurm"

    def submit(self, run: RunDir, script: str) -> str:
        ntasks = int(run.read_job().get("ntasks", 1))
        executor = TemplatedSlurmExecutor(run.submitit_folder, script, run.path, ntasks)
        try:
            job = executor.submit(slurm_task, str(run.path))
        except (submitit.core.utils.FailedJobError, subprocess.CalledProcessError, OSError) as exc:
            raise SubmissionError("sbatch refused the job", ["sbatch", f"--chdir={run.path}", str(run.script)],
                                  str(exc), str(run.path)) from None
        return str(job.job_id)

    def states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """One scheduler query for all jobs: sacct when accounting is on, squeue when it is off.

        Whether accounting is on is learned from the first sacct call and remembered for the
        process (`HPC_TF_SLURM_ACCOUNTING=0|1` says it up front), so later polls make one call.
        """
        global _accounting
        if not job_ids:
            return {}
        if _accounting is None and os.environ.get("HPC_TF_SLURM_ACCOUNTING") in ("0", "1"):
            _accounting = os.environ["HPC_TF_SLURM_ACCOUNTING"] == "1"
        if _accounting is not False:
            found = _sacct_states(job_ids)
            if found is not None:
                _accounting = True
                return found
            _accounting = False
        return _squeue_states(job_ids)

    def cancel(self, job_id: str) -> None:
        proc = subprocess.run(["scancel", job_id], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SubmissionError(f"scancel {job_id} failed", ["scancel", job_id], proc.stderr)


def _sacct_states(job_ids: Sequence[str]) -> dict[str, JobState] | None:
    argv = ["sacct", "-X", "-n", "-P", "-o", "JobID,State,ExitCode,Reason", "-j", ",".join(job_ids)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0 or SACCT_DISABLED in (proc.stdout + proc.stderr):
        return None
    return parse_sacct(proc.stdout)


def parse_sacct(text: str) -> dict[str, JobState]:
    """Parse `sacct -X -n -P -o JobID,State,ExitCode,Reason` output."""
    out = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < 3:
            continue
        job_id, state, exit_code = parts[0], parts[1].split()[0] if parts[1] else "UNKNOWN", parts[2]
        out[job_id] = JobState(state, _exit_code(exit_code), parts[3] if len(parts) > 3 else "")
    return out


def _squeue_states(job_ids: Sequence[str]) -> dict[str, JobState]:
    """Without accounting: squeue knows jobs until MinJobAge after their end, final states included."""
    argv = ["squeue", "-h", "-t", "all", "-j", ",".join(job_ids), "-o", "%i|%T|%r"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return parse_squeue(proc.stdout) if proc.returncode == 0 else {}


def parse_squeue(text: str) -> dict[str, JobState]:
    """Parse `squeue -h -o '%i|%T|%r'` (no exit code there: the run directory records it)."""
    out = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) >= 2 and parts[0]:
            out[parts[0]] = JobState(parts[1], None, parts[2] if len(parts) > 2 else "")
    return out


def _exit_code(text: str) -> int | None:
    """Slurm's `EXIT:SIGNAL`: a job killed by a signal reports 128 + signal, like a shell."""
    code, _, sig = text.partition(":")
    if not code.isdigit():
        return None
    if sig.isdigit() and int(sig) > 0 and int(code) == 0:
        return 128 + int(sig)
    return int(code)
