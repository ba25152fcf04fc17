"""The Slurm backend: submitting (through submitit, `slurm_submit`), asking about jobs, cancelling.

Scheduler queries (`states`) are bounded by `Settings.scheduler_timeout` and three-valued
(core.scheduler): a timeout, a refused connection or an error exit is NoAnswer, never "the job is gone".
"""

from __future__ import annotations

import subprocess
from typing import Callable, Sequence

from ..core.scheduler import Answer, JobState, NoAnswer, NotKnown
from ..errors import SubmissionError
from ..rundir import RunDir
from ..settings import Settings
from .slurm_text import parse_sacct, parse_scontrol_job, parse_squeue, query_failure


class SlurmBackend:
    name = "slurm"

    def __init__(self, settings: Settings) -> None:
        self.timeout = settings.scheduler_timeout
        # Whether accounting is on: said by the settings, or learned from Slurm's own answer
        # ("accounting storage is disabled"), for this instance only. A sacct that fails otherwise
        # (a timeout, slurmdbd down) is NoAnswer and changes nothing.
        self.accounting = settings.slurm_accounting
        self.queries_per_call = 1

    def submit(self, run: RunDir, script: str) -> str:
        from .slurm_submit import submit_script

        return submit_script(run, script)

    def states(self, job_ids: Sequence[str]) -> dict[str, Answer]:
        """One scheduler query for all jobs: sacct when accounting is on, squeue when it is off."""
        if not job_ids:
            return {}
        if self.accounting is not False:
            answers = self._query(
                ["sacct", "-X", "-n", "-P", "-o", "JobID,State,ExitCode,Reason", "-j", ",".join(job_ids)],
                job_ids,
                parse_sacct,
            )
            if answers is not None:
                return self._with_failed_nodes(answers)
            self.accounting = False  # Slurm said accounting storage is disabled
        answers = self._query(
            ["squeue", "-h", "-t", "all", "-j", ",".join(job_ids), "-o", "%i|%T|%r"], job_ids, parse_squeue
        )
        return self._with_failed_nodes(answers) if answers is not None else _all(job_ids, NoAnswer("squeue: ?"))

    def _with_failed_nodes(self, answers: dict[str, Answer]) -> dict[str, Answer]:
        """A NODE_FAIL says which node failed and why (two more calls, once per failed job: a rare event)."""
        for job_id, answer in answers.items():
            if isinstance(answer, JobState) and answer.state == "NODE_FAIL":
                down = self._failed_nodes(job_id)
                if down:
                    answers[job_id] = JobState(answer.state, answer.exit_code, f"node failure: {down}")
        return answers

    def _failed_nodes(self, job_id: str) -> str:
        """'n2 (down: <reason>)' for the job's nodes that are down, drained or not responding."""
        fields = parse_scontrol_job(self._run(["scontrol", "show", "job", "-o", job_id]))
        nodes = fields.get("NodeList", "")
        if not nodes or nodes == "(null)":
            return ""
        text = self._run(["sinfo", "-h", "-N", "-n", nodes, "-t", "down,drain,fail,no_respond", "-o", "%N|%T|%E"])
        failed = [line.split("|", 2) for line in text.splitlines() if line.count("|") >= 2]
        return "; ".join(f"{node} ({state}: {reason})" for node, state, reason in failed)

    def _run(self, argv: list[str]) -> str:
        """stdout of a bounded query that only adds detail ('' when it fails)."""
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return proc.stdout if proc.returncode == 0 else ""

    def _query(
        self, argv: list[str], job_ids: Sequence[str], parse: Callable[[str], dict[str, JobState]]
    ) -> dict[str, Answer] | None:
        """Run one bounded query; None when Slurm says accounting is disabled."""
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            return _all(job_ids, NoAnswer(f"{argv[0]} did not answer within {self.timeout:g} s"))
        except OSError as exc:
            return _all(job_ids, NoAnswer(f"{argv[0]}: {exc.strerror or exc}"))
        if proc.returncode == 0:
            found = parse(proc.stdout)
            return {job_id: found.get(job_id) or NotKnown(argv[0]) for job_id in job_ids}
        kind = query_failure(proc.returncode, proc.stdout, proc.stderr)
        if kind == "disabled":
            return None
        said = (proc.stderr.strip() or proc.stdout.strip() or f"exit status {proc.returncode}").splitlines()[-1]
        return _all(job_ids, NotKnown(said) if kind == "not_known" else NoAnswer(f"{argv[0]}: {said}"))

    def cancel(self, job_id: str) -> None:
        try:
            proc = subprocess.run(["scancel", job_id], capture_output=True, text=True, timeout=self.timeout * 2)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SubmissionError(f"scancel {job_id} did not answer: {exc}", ["scancel", job_id]) from None
        if proc.returncode != 0:
            raise SubmissionError(f"scancel {job_id} failed", ["scancel", job_id], proc.stderr)


def _all(job_ids: Sequence[str], answer: Answer) -> dict[str, Answer]:
    return {job_id: answer for job_id in job_ids}
