"""`python -m hpc_tf.job RUN_DIR`: run this task's share of the job (srun, mpirun and the local launcher start it)."""

import sys

from .runtime import main

sys.exit(main())
