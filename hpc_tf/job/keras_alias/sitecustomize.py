"""Make `import keras` give tf-keras, for code that imports Keras behind `tf.keras`'s back.

hpc_tf puts this folder first on the entry script's PYTHONPATH in distributed jobs that use tf-keras
(`TF_USE_LEGACY_KERAS=1`, the default there) unless `HPC_TF_KERAS_ALIAS=0`. Why: next to TensorFlow
2.18, `tf.keras` is then tf-keras, but a plain `import keras` is Keras 3; Horovod 0.28.1's Keras
callbacks do `from keras import backend`, so its own published Keras examples fail with
"module 'keras.backend' has no attribute 'constant'". With the alias both names are one Keras.

Nothing is imported until the program imports `keras` (importing tf-keras imports TensorFlow). The
sitecustomize this file shadows, if any, is run afterwards.
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


class _KerasAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """`keras` and `keras.X` are `tf_keras` and `tf_keras.X` (the same module objects)."""

    def __init__(self) -> None:
        self._specs: dict[str, ModuleSpec | None] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != "keras" and not fullname.startswith("keras."):
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        module = importlib.import_module("tf_" + spec.name)
        self._specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        original = self._specs.get(module.__spec__.name if module.__spec__ else "")
        if original is not None:
            module.__spec__ = original  # the module keeps its own identity (tf_keras...)


_wanted = os.environ.get("HPC_TF_KERAS_ALIAS") == "1" and os.environ.get("TF_USE_LEGACY_KERAS") == "1"
if _wanted and "keras" not in sys.modules and importlib.util.find_spec("tf_keras") is not None:
    sys.meta_path.insert(0, _KerasAlias())

_shadowed = importlib.machinery.PathFinder.find_spec(
    "sitecustomize", [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
)
if _shadowed is not None and _shadowed.loader is not None:
    _module = importlib.util.module_from_spec(_shadowed)
    _shadowed.loader.exec_module(_module)
