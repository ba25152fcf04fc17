"""`python -m hpc_tf ...`.

A command is a short-lived process. The garbage collector is off (its cycles cost more than they free;
the commands that wait for a run turn it back on), and the process ends with `os._exit` once its output
is flushed: every file it wrote is closed by then, and tearing the interpreter down (destroying every
imported module's objects) would add ~30 ms to each command.
"""

import gc
import os
import sys

gc.disable()

from .cli import main  # noqa: E402

code = main()
try:
    sys.stdout.flush()
    sys.stderr.flush()
except BrokenPipeError:  # the reader went away (`| head`)
    code = code or 1
os._exit(code)
