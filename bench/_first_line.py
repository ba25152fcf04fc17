"""Print `FIRST_LINE <time.time()> <rank>` and exit: the entry script bench_launch.py starts.

The timestamp is taken before anything else is imported: what bench_launch.py measures is the
time until the entry script runs, so the script itself must add nothing but interpreter start-up
(the same for every launcher). The rank comes second only so that the hand-written multi-task
variants, whose tasks share one output file, can pick rank 0's line; no TensorFlow, no Horovod.
"""

import time

STARTED = time.time()

import os  # noqa: E402  (after the timestamp on purpose)

RANK_VARS = ("HPC_TF_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID")
rank = next((os.environ[name] for name in RANK_VARS if name in os.environ), "0")
print(f"FIRST_LINE {STARTED:.6f} {rank}", flush=True)
