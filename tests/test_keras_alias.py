"""The keras alias with the real tf-keras (issue 18, item 10): Keras 3 code such as `from keras import ops` fails
naming hpc_tf's alias and how to turn it off, while what tf-keras has still imports. One interpreter (importing
tf-keras imports TensorFlow: ~5-8 s); tests/unit/test_child_site.py covers the forms with stand-in packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hpc_tf.job.runtime import CHILD_SITE
from tests.unit.test_child_site import ALIAS, PROBE

pytestmark = pytest.mark.tf


def test_keras_3_names_under_the_alias_name_the_alias() -> None:
    pytest.importorskip("tf_keras")
    env = {**os.environ, "PYTHONPATH": str(CHILD_SITE), "TF_CPP_MIN_LOG_LEVEL": "3", **ALIAS}
    code = PROBE + "import keras; print(keras.layers.Dense.__module__, keras.__version__)\n"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    result, dense = proc.stdout.splitlines()[-2:]
    got = json.loads(result)
    assert (got["same"], got["hasattr"], got["dunder"], got["works"]) == (True, False, "default", "ok")
    assert dense.startswith("tf_keras.src.layers") and dense.endswith(" 2.18.0"), dense
    for form in ("from_import", "import_sub", "attribute", "nested"):
        assert "tf-keras (Keras 2) has no 'keras." in got[form], (form, got[form])
        assert 'HPC_TF_KERAS_ALIAS: "0" in environment_variables' in got[form], got[form]
        assert "tf_keras" not in got[form].split(":")[0]  # not "cannot import name 'ops' from 'tf_keras'"
