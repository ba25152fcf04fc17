"""One step per component, for a site that sets SchedulerParameters=disable_hetjob_steps.

`python -m hpc_tf.job.hetsteps srun … --het-group=0 … : srun … --het-group=1 … : …` is the batch script's
process. It starts every component's step, tells each step's tasks their component and the leader's job id
(HPC_TF_HET_GROUP, HPC_TF_HET_LEADER: their SLURM_PROCID then counts within the component, and the port block
and requeue use the whole job's id), and waits. One step across the components ends them all when a task fails
(srun's --kill-on-bad-exit); separate steps do not see each other, so this process does it: the first step that
ends non-zero ends the job with its code (the batch script's end makes Slurm kill the other steps), otherwise the
job ends 0 once every step has. Signals it is sent (scancel -b, a `B:` signal) are passed on to the steps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Mapping, Sequence

from ..core.components import STEP_SEPARATOR
from ..core.lifecycle import shell_code
from .context import HET_GROUP, HET_LEADER

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCONT)
POLL_SECONDS = 0.2


def split_steps(argv: Sequence[str]) -> list[list[str]]:
    """The components' commands, in component order (separated by `:` as in srun's own syntax)."""
    steps: list[list[str]] = [[]]
    for arg in argv:
        if arg == STEP_SEPARATOR:
            steps.append([])
        else:
            steps[-1].append(arg)
    if any(not step for step in steps):
        raise ValueError(f"an empty command between {STEP_SEPARATOR!r}: {' '.join(argv)}")
    return steps


def step_environment(env: Mapping[str, str], group: int) -> dict[str, str]:
    """A component's step environment: the batch script's, plus its component and the leader's job id."""
    return {**env, HET_GROUP: str(group), HET_LEADER: env.get("SLURM_JOB_ID", "")}


def run_steps(steps: Sequence[Sequence[str]], env: Mapping[str, str], poll: float = POLL_SECONDS) -> int:
    """Start each step, pass signals on, return the first failing step's code (at once) or 0 when all ended."""
    procs = [subprocess.Popen(list(argv), env=step_environment(env, i)) for i, argv in enumerate(steps)]

    def forward(signum: int, _frame: object) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    while True:
        codes = [proc.poll() for proc in procs]
        failed = [(i, code) for i, code in enumerate(codes) if code]
        if failed:
            group, code = failed[0]
            print(
                f"hpc_tf: component {group}'s step ended with exit code {shell_code(code)}: ending the job",
                file=sys.stderr,
                flush=True,
            )
            return shell_code(code)
        if all(code == 0 for code in codes):
            return 0
        time.sleep(poll)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        steps = split_steps(args)
    except ValueError as exc:
        print(f"hpc_tf.job.hetsteps: {exc}", file=sys.stderr)
        return 2
    return run_steps(steps, os.environ)


if __name__ == "__main__":
    sys.exit(main())
