"""`python -m hpc_tf ...`"""

import sys

from .cli import main

sys.exit(main())
