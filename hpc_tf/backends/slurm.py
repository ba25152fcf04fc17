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
from .slurm_text import (
    array_limits,
    combine_het_jobs,
    config_values,
    expand_array_states,
    parse_sacct,
    parse_scontrol_job,
    parse_squeue,
    query_failure,
)


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
            found = combine_het_jobs(parse(proc.stdout))  # a heterogeneous job's `A+0`, `A+1`, ... are one run
            return {job_id: found.get(job_id) or NotKnown(argv[0]) for job_id in job_ids}
        kind = query_failure(proc.returncode, proc.stdout, proc.stderr)
        if kind == "disabled":
            return None
        said = (proc.stderr.strip() or proc.stdout.strip() or f"exit status {proc.returncode}").splitlines()[-1]
        return _all(job_ids, NotKnown(said) if kind == "not_known" else NoAnswer(f"{argv[0]}: {said}"))

    def array_tasks(self, array_ids: Sequence[str]) -> dict[str, JobState] | NoAnswer:
        """Every task of these job arrays (`A_i` → its state) in one query; pending ranges are split into tasks.

        sacct when accounting is on, else `squeue -r` (which prints one line per task)."""
        if not array_ids:
            return {}
        if self.accounting is not False:
            argv = ["sacct", "-X", "-n", "-P", "-o", "JobID,State,ExitCode,Reason", "-j", ",".join(array_ids)]
            found = self._tasks(argv, parse_sacct)
            if not (isinstance(found, NoAnswer) and found.error == "disabled"):
                return found
            self.accounting = False
        argv = ["squeue", "-h", "-r", "-t", "all", "-j", ",".join(array_ids), "-o", "%i|%T|%r"]
        return self._tasks(argv, parse_squeue)

    def _tasks(self, argv: list[str], parse: Callable[[str], dict[str, JobState]]) -> dict[str, JobState] | NoAnswer:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            return NoAnswer(f"{argv[0]} did not answer within {self.timeout:g} s")
        except OSError as exc:
            return NoAnswer(f"{argv[0]}: {exc.strerror or exc}")
        kind = "ok" if proc.returncode == 0 else query_failure(proc.returncode, proc.stdout, proc.stderr)
        if kind in ("ok", "not_known"):
            return expand_array_states(parse(proc.stdout))
        said = (proc.stderr.strip() or proc.stdout.strip() or f"exit status {proc.returncode}").splitlines()[-1]
        return NoAnswer("disabled" if kind == "disabled" else f"{argv[0]}: {said}")

    def array_limits(self) -> tuple[int | None, int | None, str]:
        """(MaxArraySize, max_array_tasks, how it was learned) from `scontrol show config`."""
        return self.start_array_limits()()

    def start_array_limits(self) -> Callable[[], tuple[int | None, int | None, str]]:
        """Ask `scontrol show config` now, read the answer later (the submit path imports submitit meanwhile)."""
        assumed = "Slurm's default MaxArraySize (1001) assumed"
        try:
            proc = subprocess.Popen(
                ["scontrol", "show", "config"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
            )
        except OSError as exc:
            said = f"scontrol: {exc.strerror or exc}: {assumed}"
            return lambda: (None, None, said)

        def answer() -> tuple[int | None, int | None, str]:
            try:
                out, _ = proc.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                return None, None, f"scontrol show config did not answer within {self.timeout:g} s: {assumed}"
            if proc.returncode != 0:
                return None, None, f"scontrol show config failed: {assumed}"
            size, tasks = array_limits(out)
            return size, tasks, "scontrol show config"

        return answer

    def site_config(self) -> dict[str, str] | NoAnswer:
        """`scontrol show config` as a mapping (SchedulerType, SchedulerParameters, …), or why there is none."""
        try:
            proc = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            return NoAnswer(f"scontrol show config did not answer within {self.timeout:g} s")
        except OSError as exc:
            return NoAnswer(f"scontrol: {exc.strerror or exc}")
        if proc.returncode != 0:
            said = (proc.stderr.strip() or f"exit status {proc.returncode}").splitlines()[-1]
            return NoAnswer(f"scontrol show config: {said}")
        return config_values(proc.stdout)

    def throttle(self, job_id: str, limit: int) -> None:
        """Change how many tasks of an array may run at once (0: no limit)."""
        self._control(["scontrol", "update", f"JobId={job_id}", f"ArrayTaskThrottle={limit}"])

    def cancel(self, job_id: str) -> None:
        self._control(["scancel", job_id])

    def _control(self, argv: list[str]) -> None:
        """A command that changes a job; its failure is an error naming the command and what Slurm said."""
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout * 2)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SubmissionError(f"{' '.join(argv)} did not answer: {exc}", argv) from None
        if proc.returncode != 0:
            raise SubmissionError(f"{' '.join(argv)} failed", argv, proc.stderr)


def _all(job_ids: Sequence[str], answer: Answer) -> dict[str, Answer]:
    return {job_id: answer for job_id in job_ids}
