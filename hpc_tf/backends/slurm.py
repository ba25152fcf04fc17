"""The Slurm backend: `SlurmClient`, the one place Slurm's client commands are run, and `SlurmBackend` on it
(submitting through submitit, `slurm_submit`; asking about jobs; cancelling, throttling).

Every call is bounded and three-valued (core.answers): a timeout, a refused connection or an error exit is
NoAnswer, never "the job is gone". The in-job side (rank 0's requeue, a trial's cancel) uses the same client.
"""

from __future__ import annotations

import re
import subprocess
from typing import Callable, Sequence

from ..core.answers import Answer, JobState, NoAnswer, NotKnown
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

NODE_STATE = re.compile(r"^NodeName=(\S+) .*?\bState=(\S+)", re.MULTILINE)


class SlurmClient:
    """Slurm's client commands, each bounded by `timeout` seconds; what they print is parsed in `slurm_text`."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def call(self, argv: list[str], timeout: float | None = None) -> subprocess.CompletedProcess[str] | NoAnswer:
        """Run one command; NoAnswer when it could not run or did not end in time (its exit status is the caller's)."""
        limit = self.timeout if timeout is None else timeout
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=limit)
        except subprocess.TimeoutExpired:
            return NoAnswer(f"{argv[0]} did not answer within {limit:g} s")
        except OSError as exc:
            return NoAnswer(f"{argv[0]}: {exc.strerror or exc}")

    def detail(self, argv: list[str]) -> str:
        """stdout of a query that only adds detail ('' when it fails)."""
        proc = self.call(argv)
        return proc.stdout if not isinstance(proc, NoAnswer) and proc.returncode == 0 else ""

    def job_fields(self, job_id: str) -> dict[str, str]:
        """The job's `scontrol show job -o` fields ({} when Slurm does not answer)."""
        return parse_scontrol_job(self.detail(["scontrol", "show", "job", "-o", job_id]))

    def node_states(self, nodes: Sequence[str]) -> dict[str, str]:
        """`scontrol show node -o` State of each node ({} when Slurm does not answer)."""
        if not nodes:
            return {}
        return dict(NODE_STATE.findall(self.detail(["scontrol", "show", "node", "-o", ",".join(nodes)])))

    def control(self, argv: list[str]) -> None:
        """A command that changes a job; its failure is an error naming the command and what Slurm said."""
        proc = self.call(argv, self.timeout * 2)
        if isinstance(proc, NoAnswer):
            raise SubmissionError(f"{' '.join(argv)} did not answer: {proc.error}", argv)
        if proc.returncode != 0:
            raise SubmissionError(f"{' '.join(argv)} failed", argv, proc.stderr)

    def requeue(self, job_id: str, timeout: float) -> str | None:
        """`scontrol requeue JOB`: None once Slurm took it, else what was said (a refusal, or no answer)."""
        proc = self.call(["scontrol", "requeue", job_id], timeout)
        if isinstance(proc, NoAnswer):
            return proc.error
        if proc.returncode == 0:
            return None
        said = (proc.stderr.strip() or proc.stdout.strip() or f"exit status {proc.returncode}").splitlines()[-1]
        return f"scontrol requeue {job_id}: {said}"


class SlurmBackend:
    name = "slurm"

    def __init__(self, settings: Settings) -> None:
        self.timeout = settings.scheduler_timeout
        self.client = SlurmClient(settings.scheduler_timeout)
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
        fields = self.client.job_fields(job_id)
        nodes = fields.get("NodeList", "")
        if not nodes or nodes == "(null)":
            return ""
        text = self.client.detail(
            ["sinfo", "-h", "-N", "-n", nodes, "-t", "down,drain,fail,no_respond", "-o", "%N|%T|%E"]
        )
        failed = [line.split("|", 2) for line in text.splitlines() if line.count("|") >= 2]
        return "; ".join(f"{node} ({state}: {reason})" for node, state, reason in failed)

    def _query(
        self, argv: list[str], job_ids: Sequence[str], parse: Callable[[str], dict[str, JobState]]
    ) -> dict[str, Answer] | None:
        """Run one bounded query; None when Slurm says accounting is disabled."""
        proc = self.client.call(argv)
        if isinstance(proc, NoAnswer):
            return _all(job_ids, proc)
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
        proc = self.client.call(argv)
        if isinstance(proc, NoAnswer):
            return proc
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
        proc = self.client.call(["scontrol", "show", "config"])
        if isinstance(proc, NoAnswer):
            return NoAnswer(f"scontrol show config: {proc.error}")
        if proc.returncode != 0:
            said = (proc.stderr.strip() or f"exit status {proc.returncode}").splitlines()[-1]
            return NoAnswer(f"scontrol show config: {said}")
        return config_values(proc.stdout)

    def throttle(self, job_id: str, limit: int) -> None:
        """Change how many tasks of an array may run at once (0: no limit)."""
        self.client.control(["scontrol", "update", f"JobId={job_id}", f"ArrayTaskThrottle={limit}"])

    def cancel(self, job_id: str) -> None:
        self.client.control(["scancel", job_id])


def _all(job_ids: Sequence[str], answer: Answer) -> dict[str, Answer]:
    return {job_id: answer for job_id in job_ids}
