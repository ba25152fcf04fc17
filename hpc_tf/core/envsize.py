"""What one environment string may hold when the entry script is started, and the way around it for TF_CONFIG and a
sweep trial's HPC_TF_HPARAMS.

Linux's execve refuses any single argument or environment string (`NAME=value` and its NUL) longer than
MAX_ARG_STRLEN, 32 pages: 131072 bytes with 4 KiB pages ("Argument list too long", E2BIG). A 'multiworker' or
'ps' job of about 8,000 tasks has a TF_CONFIG that long (every task's `host:port` is in it), so past a threshold
(the setting HPC_TF_TF_CONFIG_ENV_MAX, recorded in job.json) the runtime writes it to a file instead and the
entry script's interpreter reads it back into `os.environ` (hpc_tf/job/child_site/sitecustomize.py). A trial's
hyperparameters (HPC_TF_HPARAMS, JSON: 20 string values of 11 KB are too long) go the same way, past MAX_ARG_STRLEN,
as HPC_TF_HPARAMS_FILE. Pure.
"""

from __future__ import annotations

from typing import Mapping

MAX_ARG_STRLEN = 32 * 4096  # bytes, the NUL included (include/uapi/linux/binfmts.h; more with larger pages)
TF_CONFIG_FILE = "HPC_TF_TF_CONFIG_FILE"  # the file's path, for the entry script's interpreter (child_site)
HPARAMS = "HPC_TF_HPARAMS"  # a sweep trial's hyperparameters, JSON
HPARAMS_FILE = "HPC_TF_HPARAMS_FILE"  # the same in a file, when too long for the environment (child_site)
FILE_VARIABLES = {TF_CONFIG_FILE: "TF_CONFIG", HPARAMS_FILE: HPARAMS}  # file variable → the variable it stands for


def env_string_bytes(name: str, value: str) -> int:
    """How many bytes `NAME=value` takes in a new program's environment, its NUL included. A lone surrogate (which
    YAML's "\\ud800" can give) counts as the 3 bytes it would take: this only measures; what may be in an environment
    at all is checked elsewhere, so the measure must not fail first."""
    return len(name.encode("utf-8", "surrogatepass")) + len(value.encode("utf-8", "surrogatepass")) + 2


def tf_config_in_env(text: str, limit: int) -> bool:
    """Whether TF_CONFIG goes into the environment as it is (else through its file): `limit` bytes at most."""
    return env_string_bytes("TF_CONFIG", text) <= limit


def fits_env(name: str, text: str, limit: int = MAX_ARG_STRLEN) -> bool:
    """Whether `NAME=text` goes into the environment as it is (else through a file): `limit` bytes at most."""
    return env_string_bytes(name, text) <= limit


def oversized(env: Mapping[str, str]) -> list[tuple[str, int]]:
    """(name, bytes) of every variable that no program could be started with, in name order."""
    sizes = ((name, env_string_bytes(name, value)) for name, value in sorted(env.items()))
    return [(name, size) for name, size in sizes if size > MAX_ARG_STRLEN]


def too_long_text(name: str, size: int, origin: str) -> str:
    """Why the entry script cannot start with this variable, and where the value came from."""
    return (
        f"environment variable {name} is {size} bytes ({name}=value and its NUL byte): Linux starts no program "
        f"with an environment string over {MAX_ARG_STRLEN} bytes (MAX_ARG_STRLEN, 'Argument list too long'); "
        f"it comes from {origin}: shorten it, or pass a file's path instead"
    )
