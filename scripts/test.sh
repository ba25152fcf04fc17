#!/usr/bin/env bash
# Install everything the tests need and run the whole suite against a real Slurm cluster.
#   scripts/test.sh [pytest args...]      (as root; PYTHON=/path/to/python to choose the interpreter)
# 1. Debian packages: Slurm (slurmctld, slurmd, client, munge) and Open MPI with PMIx.
# 2. hpc_tf with its test extra (TensorFlow CPU, scikit-learn, pytest) into that Python.
# 3. pytest: a session fixture starts the 4-node dev cluster (scripts/dev-cluster.sh) and stops it.
# A missing Slurm or TensorFlow fails the run; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
scripts/dev-cluster.sh install
"$PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e '.[test]'
"$PY" - <<'PY'
import importlib.util, shutil, sys
missing = [name for name in ("tensorflow", "sklearn", "submitit") if importlib.util.find_spec(name) is None]
missing += [tool for tool in ("sbatch", "srun", "slurmctld", "slurmd") if shutil.which(tool) is None]
if missing:
    sys.exit(f"scripts/test.sh: missing after install: {', '.join(missing)}")
PY
exec "$PY" -m pytest "$@"
