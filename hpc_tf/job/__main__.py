"""`python -m hpc_tf.job RUN_DIR`: run this task's share of the job (srun, mpirun and the local launcher start it).

The runtime only waits on its child: the garbage collector stays off (see hpc_tf/__main__.py).
"""

import gc
import sys

gc.disable()

from .runtime import main  # noqa: E402

code = main()
gc.freeze()
sys.exit(code)
