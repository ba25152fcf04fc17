"""The local backend's task launcher: `python -m hpc_tf.job.local_tasks RUN_DIR NTASKS`.

It does for one machine what srun does for a step: starts one in-job runtime per task with its
rank (HPC_TF_TASK_RANK, HPC_TF_NTASKS, and HPC_TF_JOB_ID for the port block), and like
`srun --kill-on-bad-exit` ends every task as soon as one exits non-zero. It exits with rank 0's
exit code, or with the first failure's (a task killed by signal N: 128 + N, as srun says).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from ..core.lifecycle import shell_code


def launch(run_dir: str, ntasks: int) -> int:
    env = dict(os.environ, HPC_TF_NTASKS=str(ntasks), HPC_TF_JOB_ID=str(os.getpid()))
    procs = [
        subprocess.Popen(
            [sys.executable, "-u", "-m", "hpc_tf.job", run_dir], env={**env, "HPC_TF_TASK_RANK": str(rank)}
        )
        for rank in range(ntasks)
    ]

    def forward(signum: int, _frame: object) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    first_failure: int | None = None
    while any(proc.poll() is None for proc in procs):
        failed = [proc.returncode for proc in procs if proc.returncode not in (None, 0)]
        if failed and first_failure is None:
            first_failure = failed[0]
            forward(signal.SIGTERM, None)
        time.sleep(0.1)
    codes = [proc.returncode for proc in procs]
    if first_failure is None:
        first_failure = next((c for c in codes if c != 0), None)
    return shell_code(codes[0] if codes[0] != 0 or first_failure is None else first_failure)


if __name__ == "__main__":
    sys.exit(launch(sys.argv[1], int(sys.argv[2])))
