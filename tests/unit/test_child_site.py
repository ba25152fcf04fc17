"""hpc_tf's sitecustomize in the entry script's interpreter (hpc_tf/job/child_site), with real interpreters and
stand-in packages (`tf_keras` and `keras` of a few lines, so no TensorFlow is imported): the keras alias and its
switches as before, a name tf-keras lacks (`from keras import ops`, issue 18 item 10) failing with a message that
names the alias and how to turn it off, TF_CONFIG from its file, and a shadowed sitecustomize still run.
tests/test_keras_alias.py does the same with the real tf-keras."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpc_tf.job.runtime import CHILD_SITE

PROBE = """
import json, sys
out = {}
for name, code in [
    ("from_import", "from keras import ops"),
    ("import_sub", "import keras.ops"),
    ("attribute", "import keras; keras.ops"),
    ("nested", "from keras.layers import Pipeline"),
    ("works", "from keras import layers; from keras.layers import Dense; import keras.layers"),
]:
    try:
        exec(code, {})
        out[name] = "ok"
    except Exception as exc:
        out[name] = f"{type(exc).__name__}: {exc}"
import keras
out["same"] = keras is sys.modules.get("tf_keras")
out["hasattr"] = hasattr(keras, "ops")
out["dunder"] = getattr(keras, "__wrapped__", "default")
print(json.dumps(out))
"""


@pytest.fixture
def packages(tmp_path: Path) -> Path:
    """A stand-in tf_keras (no `ops`) and a stand-in Keras 3 `keras` (with `ops`), and another sitecustomize."""
    for name, files in {
        "tf_keras": {"__init__.py": "from . import layers\n", "layers/__init__.py": "Dense = 'tf_keras Dense'\n"},
        "keras": {"__init__.py": "", "ops.py": "", "layers/__init__.py": "Dense = Pipeline = 1\n"},
    }.items():
        for rel, text in files.items():
            (tmp_path / "site" / name / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "site" / name / rel).write_text(text)
    (tmp_path / "site" / "sitecustomize.py").write_text("import os\nos.environ['SHADOWED_RAN'] = '1'\n")
    return tmp_path / "site"


def probe(packages: Path, **env: str) -> dict:
    path = os.pathsep.join([str(CHILD_SITE), str(packages)])
    full = {"PATH": os.environ["PATH"], "PYTHONPATH": path, **env}
    code = PROBE + "import os; print(os.environ.get('SHADOWED_RAN'))\n"
    proc = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result, shadowed = proc.stdout.splitlines()
    assert shadowed == "1"  # the sitecustomize this one shadows still ran
    return json.loads(result)


ALIAS = {"HPC_TF_KERAS_ALIAS": "1", "TF_USE_LEGACY_KERAS": "1"}


def test_a_name_tf_keras_lacks_names_the_alias_and_its_switches(packages: Path) -> None:
    got = probe(packages, **ALIAS)
    assert (got["same"], got["hasattr"], got["dunder"], got["works"]) == (True, False, "default", "ok")
    for form, name in [("from_import", "keras.ops"), ("import_sub", "keras.ops"), ("attribute", "keras.ops"),
                       ("nested", "keras.layers.Pipeline")]:  # fmt: skip
        message = got[form]
        kind = "AttributeError" if form == "attribute" else "ModuleNotFoundError"
        assert message.startswith(f"{kind}: tf-keras (Keras 2) has no {name!r}"), (form, message)
        assert "HPC_TF_KERAS_ALIAS=1 with TF_USE_LEGACY_KERAS=1" in message
        assert 'HPC_TF_KERAS_ALIAS: "0" in environment_variables' in message
        assert 'TF_USE_LEGACY_KERAS: "0"' in message


@pytest.mark.parametrize(
    "env",
    [{"HPC_TF_KERAS_ALIAS": "0", "TF_USE_LEGACY_KERAS": "1"}, {"HPC_TF_KERAS_ALIAS": "1", "TF_USE_LEGACY_KERAS": "0"}],
    ids=["alias-off", "keras-3"],
)
def test_either_switch_leaves_keras_as_it_is(packages: Path, env: dict[str, str]) -> None:
    got = probe(packages, **env)
    assert got["same"] is False and got["hasattr"] is True
    assert {got[k] for k in ("from_import", "import_sub", "attribute", "nested", "works")} == {"ok"}


def test_tf_config_from_the_file_is_in_os_environ_only(tmp_path: Path) -> None:
    config = {"cluster": {"worker": ["n1:20000", "n2:20001"]}, "task": {"type": "worker", "index": 1}}
    (tmp_path / "tf.json").write_text(json.dumps(config))
    code = (
        "import os, subprocess, sys; print(os.environ['TF_CONFIG']); sys.argv[0] == '-c' or sys.exit(3);"
        "print(subprocess.run(['sh', '-c', 'echo ${TF_CONFIG:-none}'], capture_output=True, text=True).stdout.strip())"
    )
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(CHILD_SITE),
        "HPC_TF_TF_CONFIG_FILE": str(tmp_path / "tf.json"),
    }
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [json.dumps(config), "none"]
    given = subprocess.run([sys.executable, "-c", code], env={**env, "TF_CONFIG": "{}"}, capture_output=True, text=True)
    assert given.stdout.splitlines()[0] == "{}"  # one already given (a program the script starts itself) is kept
