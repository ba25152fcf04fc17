"""Submitting to Slurm through submitit, with hpc_tf's template writing the script.

Why a submitit subclass: submitit's `SlurmExecutor` knows how to run sbatch, parse the job id and
report failures. We override exactly two hooks:
  - `_make_submission_file_text`: the script text comes from our Jinja2 template, so it is
    the very script `python -m hpc_tf render` prints (submitit's own generator would quote
    `#SBATCH` values for a shell, which sbatch does not parse that way);
  - `_make_submission_command`: the run directory goes into sbatch's argv (`--chdir`), never
    into the script text.
and submit with `_submit_command`: every task runs `python -m hpc_tf.job .` (no pickled call, so a
task starts without importing submitit). Only `submit` imports this module (submitit is slow to import).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import submitit

from ..errors import SubmissionError
from ..rundir import RunDir


class TemplatedSlurmExecutor(submitit.SlurmExecutor):
    """A submitit SlurmExecutor whose script text and sbatch working directory are given."""

    def __init__(self, folder: Path, script: str, workdir: Path) -> None:
        super().__init__(folder)
        self._script = script
        self._workdir = workdir

    def _make_submission_file_text(self, command: str, uid: str) -> str:
        return self._script

    def _make_submission_command(self, submission_file_path: Path) -> list[str]:
        return ["sbatch", f"--chdir={self._workdir}", str(submission_file_path)]


def submit_script(run: RunDir, script: str) -> str:
    """sbatch the rendered script with the run directory as its working directory; return the job id.

    A submission that timed out may still have queued the job (Slurm answers late): the error says so."""
    executor = TemplatedSlurmExecutor(run.submitit_folder, script, run.path)
    try:
        run.submitit_folder.mkdir(exist_ok=True)
        job = executor._submit_command("hpc_tf job")  # the command is in the script already
    except (submitit.core.utils.FailedJobError, subprocess.CalledProcessError, OSError) as exc:
        said = str(exc)
        if "timed out" in said or "Unable to contact" in said:
            said += "\n(the controller did not answer: check `squeue --me` before resubmitting, the job may be queued)"
        raise SubmissionError(
            "sbatch refused the job", ["sbatch", f"--chdir={run.path}", str(run.script)], said, str(run.path)
        ) from None
    return str(job.job_id)
