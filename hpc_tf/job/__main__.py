"""`python -m hpc_tf.job RUN_DIR`: run this task's share of the job (srun, mpirun and the local launcher start it).

The runtime only waits on its child: the garbage collector stays off, and the process ends with
`os._exit` once its output is flushed (see hpc_tf/__main__.py).
"""

import gc
import os
import sys

gc.disable()

from .runtime import main  # noqa: E402

code = main()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
