"""hpc_tf's part of the entry script's interpreter start-up: TF_CONFIG from its file, and `import keras` as tf-keras.

hpc_tf puts this folder first on the entry script's PYTHONPATH when either is needed (hpc_tf/job/runtime.py); Python
imports one `sitecustomize` per interpreter, before `__main__`, so the script runs exactly as `python -u script.py`
would (its sys.argv, `__main__`, tracebacks, sys.path[0]). It imports nothing of hpc_tf: a job environment without
hpc_tf in it runs it too. The sitecustomize this file shadows, if any, is run afterwards.

1. TF_CONFIG. A TF_CONFIG longer than one environment string may be (hpc_tf/core/envsize.py: Linux refuses one over
   128 KiB, a job of ~8,000 tasks has one) reaches the task as a file, `HPC_TF_TF_CONFIG_FILE`. It is put into
   `os.environ` here, where TensorFlow reads it (TFConfigClusterResolver, the strategies), but not into the process's
   C environment: a program the script starts (`subprocess.run(["nvidia-smi"])`) would otherwise inherit the long
   string and fail to start with "Argument list too long". A Python program it starts comes through here again. A
   TF_CONFIG already in the environment is left as it is (the runtime gives none alongside the file). A sweep
   trial's HPC_TF_HPARAMS too long for the environment comes the same way, as `HPC_TF_HPARAMS_FILE`.

2. Keras, in distributed jobs that use tf-keras (`TF_USE_LEGACY_KERAS=1`, the default there) unless
   `HPC_TF_KERAS_ALIAS=0`. Why: next to TensorFlow 2.18, `tf.keras` is then tf-keras, but a plain `import keras` is
   Keras 3; Horovod 0.28.1's Keras callbacks do `from keras import backend`, so its own published Keras examples fail
   with "module 'keras.backend' has no attribute 'constant'". With the alias both names are one Keras. Nothing is
   imported until the program imports `keras` (importing tf-keras imports TensorFlow). A Keras 3 name tf-keras lacks
   (`from keras import ops`) fails naming the alias and how to turn it off, instead of "cannot import name 'ops' from
   'tf_keras'".
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

_HERE = os.path.dirname(os.path.abspath(__file__))
TF_CONFIG_FILE = "HPC_TF_TF_CONFIG_FILE"  # hpc_tf.core.envsize.TF_CONFIG_FILE (this file imports nothing of hpc_tf)
HPARAMS_FILE = "HPC_TF_HPARAMS_FILE"  # hpc_tf.core.envsize.HPARAMS_FILE
ALIAS_TEXT = (
    "tf-keras (Keras 2) has no {name!r}, and `keras` is tf-keras here: hpc_tf makes `import keras` give tf-keras in "
    "distributed jobs (HPC_TF_KERAS_ALIAS=1 with TF_USE_LEGACY_KERAS=1). For Keras 3's {name}, set "
    'HPC_TF_KERAS_ALIAS: "0" in environment_variables (`import keras` is then Keras 3, tf.keras stays tf-keras), '
    'or TF_USE_LEGACY_KERAS: "0" too (both are Keras 3; model.fit under MultiWorkerMirroredStrategy or '
    "ParameterServerStrategy then fails)"
)


def _from_file(name: str, file_variable: str) -> None:
    """`name` into os.environ only, from the file `file_variable` names (see the module docstring); a file that
    cannot be read ends the program (training without its cluster or its hyperparameters would be wrong)."""
    path = os.environ.get(file_variable)
    if not path or name in os.environ:
        return
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        sys.stderr.write(f"hpc_tf: cannot read {name} from {file_variable}={path}: {exc}\n")
        sys.stderr.flush()
        os._exit(2)
    data = getattr(os.environ, "_data", None)  # CPython's os.environ keeps its values here; putenv is separate
    if isinstance(data, dict):
        data[os.environ.encodekey(name)] = os.environ.encodevalue(text)
    else:
        os.environ[name] = text


class _KerasAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """`keras` and `keras.X` are `tf_keras` and `tf_keras.X` (the same module objects)."""

    def __init__(self) -> None:
        self._specs: dict[str, ModuleSpec | None] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname.startswith("tf_keras.") and _aliased():
            return self._tf_keras_spec(fullname, path, target)
        if fullname != "keras" and not fullname.startswith("keras."):
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def _tf_keras_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None) -> ModuleSpec | None:
        """A tf_keras module as the other finders find it; none is a Keras 3 name: say so. `from keras import ops`
        looks for `tf_keras.ops` (the module's own name), so this is where that import fails."""
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                return spec
        name = "keras" + fullname[len("tf_keras") :]
        raise ModuleNotFoundError(ALIAS_TEXT.format(name=name), name=name)

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        module = importlib.import_module("tf_" + spec.name)
        self._specs[spec.name] = module.__spec__
        if spec.name == "keras" and "__getattr__" not in vars(module):
            module.__getattr__ = _missing_attribute  # type: ignore[method-assign]  # PEP 562: the module's own
        return module

    def exec_module(self, module: ModuleType) -> None:
        original = self._specs.get(module.__spec__.name if module.__spec__ else "")
        if original is not None:
            module.__spec__ = original  # the module keeps its own identity (tf_keras...)


def _aliased() -> bool:
    """Whether `keras` is tf_keras in this process (once `import keras` has gone through the alias)."""
    keras = sys.modules.get("keras")
    return keras is not None and keras is sys.modules.get("tf_keras")


def _missing_attribute(name: str) -> object:
    """`keras.ops` (a name tf-keras lacks) names the alias; private and dunder names fail as they always do."""
    if name.startswith("_"):
        raise AttributeError(f"module 'tf_keras' has no attribute {name!r}")
    raise AttributeError(ALIAS_TEXT.format(name=f"keras.{name}"))


_from_file("TF_CONFIG", TF_CONFIG_FILE)
_from_file("HPC_TF_HPARAMS", HPARAMS_FILE)

_wanted = os.environ.get("HPC_TF_KERAS_ALIAS") == "1" and os.environ.get("TF_USE_LEGACY_KERAS") == "1"
if _wanted and "keras" not in sys.modules and importlib.util.find_spec("tf_keras") is not None:
    sys.meta_path.insert(0, _KerasAlias())

_shadowed = importlib.machinery.PathFinder.find_spec(
    "sitecustomize", [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
)
if _shadowed is not None and _shadowed.loader is not None:
    _module = importlib.util.module_from_spec(_shadowed)
    _shadowed.loader.exec_module(_module)
