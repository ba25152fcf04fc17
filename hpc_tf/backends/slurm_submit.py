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


# What sbatch says when it refuses a job → the config key that asked for it.
SBATCH_REFUSALS = (
    ("invalid partition", "compute_target.partition"),
    ("invalid qos", "compute_target.qos"),
    ("invalid account", "compute_target.account"),
    ("invalid feature", "compute_target.constraint"),
    ("reservation is invalid", "compute_target.reservation"),
    ("invalid node name", "compute_target.exclude"),
    ("time limit", "max_run_duration_seconds or compute_target.time"),
    ("node count specification", "node_count"),
    (
        "requested node configuration is not available",
        "node_count, process_count_per_node or compute_target (cpus_per_task, mem, gpus_per_node, constraint)",
    ),
    ("qos policy", "compute_target.qos or compute_target.account"),
    ("memory specification", "compute_target.mem"),
    ("invalid generic resource", "compute_target.gpus_per_node"),
)


def refused_key(said: str) -> str | None:
    """The config key an sbatch refusal is about, when its message says."""
    lowered = said.lower()
    return next((key for words, key in SBATCH_REFUSALS if words in lowered), None)


def submit_script(run: RunDir, script: str) -> str:
    """sbatch the rendered script with the run directory as its working directory; return the job id."""
    return sbatch(run.path, run.submitit_folder, run.script, script)


def sbatch(workdir: Path, folder: Path, script_path: Path, script: str) -> str:
    """sbatch a rendered script (through submitit) with `workdir` as its working directory; return the job id.

    A submission that timed out may still have queued the job (Slurm answers late): the error says so."""
    executor = TemplatedSlurmExecutor(folder, script, workdir)
    try:
        folder.mkdir(exist_ok=True)
        job = executor._submit_command("hpc_tf job")  # the command is in the script already
    except (submitit.core.utils.FailedJobError, subprocess.CalledProcessError, OSError) as exc:
        said = str(exc)
        if "timed out" in said or "Unable to contact" in said:
            said += "\n(the controller did not answer: check `squeue --me` before resubmitting, the job may be queued)"
        key = refused_key(said)
        head = f"sbatch refused the job: check {key}" if key else "sbatch refused the job"
        error = SubmissionError(head, ["sbatch", f"--chdir={workdir}", str(script_path)], said, str(workdir))
        error.exit_status = 2 if key else 1  # the config asked for something this cluster does not have
        raise error from None
    return str(job.job_id)
