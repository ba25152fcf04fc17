"""Submit N trivial held calls with submitit's own `map_array` and print the array's job id.

bench_sweep.py times this whole process as the reference for submitting an N-trial sweep: what a
submitit-based sweep launcher does at least (import submitit, pickle one call per task, write one sbatch
script, call sbatch once). Held (`--hold`) so nothing runs; bench_sweep.py cancels it afterwards.

Usage: python bench/_submitit_map_array.py FOLDER N
"""

import sys

import submitit


def main() -> None:
    ex = submitit.AutoExecutor(folder=sys.argv[1])
    ex.update_parameters(timeout_min=5, slurm_array_parallelism=50, slurm_additional_parameters={"hold": True})
    jobs = ex.map_array(int, range(int(sys.argv[2])))
    print(jobs[0].job_id.split("_")[0])


if __name__ == "__main__":
    main()
