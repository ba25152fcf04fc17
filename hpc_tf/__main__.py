"""`python -m hpc_tf ...`.

A command is a short-lived process: the garbage collector is off (its cycles, and the collection of
every imported object at exit, cost more than they free: ~20-40 ms per command); the commands that
wait for a run turn it back on.
"""

import gc
import sys

gc.disable()

from .cli import main  # noqa: E402

code = main()
gc.freeze()  # what is left at exit is not collected object by object
sys.exit(code)
