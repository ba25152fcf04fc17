"""Submit a trivial held job with submitit's own AutoExecutor and print its job id.

bench_cli.py times this whole process as the reference for `hpc_tf submit`: it is the least
a submitit-based tool can do (import submitit, pickle a function, write an sbatch script, call
sbatch). The job is held (`--hold`) so it never runs; bench_cli.py cancels it afterwards.

Usage: python bench/_submitit_trivial.py FOLDER
"""

import sys

import submitit


def main() -> None:
    """Submit int(0) as a held Slurm job whose submitit files go to sys.argv[1]."""
    ex = submitit.AutoExecutor(folder=sys.argv[1])
    ex.update_parameters(timeout_min=5, slurm_additional_parameters={"hold": True})
    job = ex.submit(int, 0)
    print(job.job_id)


if __name__ == "__main__":
    main()
