#!/usr/bin/env bash
# install-horovod.sh — install Horovod (TensorFlow + MPI + Gloo) into $PYTHON, building it at most once.
#
# Horovod is a C++ extension compiled against the exact TensorFlow installed: a wheel built against
# TF 2.18.1 imports beside 2.17.1 and then fails (HorovodVersionMismatchError), and pip's own cache
# does not know that. So the built wheel is cached under a key made of the Horovod, TensorFlow,
# Python and Open MPI versions: $HPC_TF_WHEEL_CACHE/horovod-<hvd>_tf-<tf>_py<py>_ompi-<ompi>/.
# A cache hit installs in seconds; a miss builds (~3-7 minutes on 2 cores) and fills the cache.
# Needs: TensorFlow installed in $PYTHON, Open MPI headers (libopenmpi-dev), cmake and g++.
set -euo pipefail
PY=${PYTHON:-python3}
HVD=${HOROVOD_VERSION:-0.28.1}
CACHE=${HPC_TF_WHEEL_CACHE:-/var/cache/hpc_tf/wheels}
log() { printf '[install-horovod] %s\n' "$*" >&2; }

tf=$("$PY" -c 'import importlib.metadata as m
for d in ("tensorflow-cpu", "tensorflow"):
    try:
        print(m.version(d)); break
    except m.PackageNotFoundError:
        pass' 2>/dev/null || true)
[ -n "$tf" ] || { log "TensorFlow is not installed in $PY: pip install 'hpc_tf[tf]' first"; exit 1; }
pyv=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
ompi=$(dpkg-query -W -f='${Version}' libopenmpi-dev 2>/dev/null | cut -d- -f1 || true)
[ -n "$ompi" ] || ompi=$(mpirun --version 2>/dev/null | head -1 | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' || echo unknown)
key="horovod-${HVD}_tf-${tf}_py${pyv}_ompi-${ompi}"
dir="$CACHE/$key"

installed=$("$PY" -c 'import importlib.metadata as m; print(m.version("horovod"))' 2>/dev/null || true)
if [ "$installed" = "$HVD" ] && [ -f "$dir/.installed-from" ] && "$PY" -c 'import horovod.tensorflow' 2>/dev/null; then
  log "horovod $HVD already installed for TensorFlow $tf"
  exit 0
fi

build_env=(HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITH_MPI=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1)
if ! ls "$dir"/horovod-"$HVD"-*.whl >/dev/null 2>&1; then
  log "no cached wheel for $key: building (a few minutes)"
  command -v cmake >/dev/null && command -v g++ >/dev/null || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends cmake g++ >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends cmake g++ >/dev/null; }
  }
  "$PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore wheel setuptools packaging
  mkdir -p "$dir.tmp"
  # --no-cache-dir: pip's wheel cache is keyed by the sdist only, so it would hand back a Horovod
  # built against another TensorFlow
  env "${build_env[@]}" "$PY" -m pip wheel --quiet --disable-pip-version-check --no-cache-dir --no-deps \
    --no-build-isolation "horovod==$HVD" -w "$dir.tmp"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"   # a half-built cache entry is never used
fi
"$PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --force-reinstall "$dir"/horovod-"$HVD"-*.whl
# Horovod's own run-time dependencies (small, pure Python)
"$PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore cloudpickle psutil pyyaml packaging cffi
echo "$dir" > "$dir/.installed-from"
"$PY" -c 'import horovod.tensorflow as hvd; print("horovod", hvd.__version__ if hasattr(hvd, "__version__") else "", "mpi:", hvd.mpi_built(), "gloo:", hvd.gloo_built())'
