"""Python environments for jobs: one per distinct package set, built once, shared, reused.

An environment is keyed by a hash of what makes it (the kind, the normalised package list,
the requirements/dependencies file's content, the base interpreter and its version, whether the
base's packages are inherited, the wheelhouse options). It lives in `<cache root>/<key>/`
(`HPC_TF_ENV_CACHE`, default `~/.cache/hpc_tf/envs`: put it on a filesystem the compute nodes
see). Builders take a file lock per key, so concurrent submissions of the same set build it
once and the others wait; an environment is built aside and renamed into place only when
complete, so a half-built one is never used; a failed build leaves its log and says where.
pip environments are built with uv when it is on PATH (or importable), with pip otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import msgspec

from ..core.records import EnvRequest
from ..errors import HpcTfError

__all__ = ["COMPLETE", "EnvBuildError", "EnvRequest", "ensure", "env_key", "env_python"]

COMPLETE = ".hpc_tf-env.json"
CONDA_TOOLS = ("micromamba", "mamba", "conda")


class EnvBuildError(HpcTfError):
    """An environment could not be built; the message names the log."""


def normalise_requirement(text: str) -> str:
    """PEP 508 requirement in canonical form (name lower-cased and dash-separated, specifiers sorted)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    req = Requirement(text)
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    spec = ",".join(sorted(str(s) for s in req.specifier))
    url = f" @ {req.url}" if req.url else ""
    marker = f"; {req.marker}" if req.marker else ""
    return f"{canonicalize_name(req.name)}{extras}{spec}{url}{marker}"


def env_key(request: EnvRequest) -> str:
    """The cache key: equal requests (up to package order and spelling) share an environment."""
    data = msgspec.to_builtins(request)
    data["packages"] = sorted(data["packages"])
    data["requirements"] = "\n".join(
        sorted(
            line.strip()
            for line in request.requirements.splitlines()
            if line.strip() and not line.strip().startswith("#")
        )
    )
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    return f"{request.kind}-{digest[:16]}"


def env_python(root: Path, key: str) -> Path:
    """Where the environment's interpreter is, known before the environment is built."""
    return root / key / "bin" / "python"


def conda_tool() -> str | None:
    return next((tool for tool in CONDA_TOOLS if shutil.which(tool)), None)


def uv_command(choice: str = "auto") -> list[str] | None:
    """uv on PATH, or the one the `uv` Python package ships (it is a binary inside a wheel).

    `choice` (settings: HPC_TF_ENV_TOOL) `pip` forces pip, `uv` insists on uv.
    """
    if choice == "pip":
        return None
    if shutil.which("uv"):
        return ["uv"]
    try:
        from uv import find_uv_bin

        return [find_uv_bin()]
    except (ImportError, FileNotFoundError):
        if choice == "uv":
            raise EnvBuildError("HPC_TF_ENV_TOOL=uv but uv is not installed: pip install uv") from None
        return None


def ensure(root: Path, request: EnvRequest, timeout: float = 3600, tool: str = "auto") -> dict[str, Any]:
    """The environment for `request`, built now if needed; returns its record (key, path, freeze, built)."""
    from filelock import FileLock, Timeout

    key = env_key(request)
    root.mkdir(parents=True, exist_ok=True)
    final = root / key
    if (final / COMPLETE).is_file():
        return _touch(final) | {"built": False}
    try:
        with FileLock(str(root / f"{key}.lock"), timeout=timeout):
            if (final / COMPLETE).is_file():  # another submission built it while we waited
                return _touch(final) | {"built": False}
            return _build(root, key, request, tool) | {"built": True}
    except Timeout:
        raise EnvBuildError(
            f"waited {timeout:.0f} s for another build of environment {key} ({root / (key + '.lock')})"
        ) from None


def _touch(path: Path) -> dict[str, Any]:
    try:
        record = json.loads((path / COMPLETE).read_text())
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError, RecursionError) as exc:
        raise EnvBuildError(
            f"the cached environment {path} is damaged ({path / COMPLETE}: {exc}): "
            f"remove it with `python -m hpc_tf env prune --key {path.name}` and submit again"
        ) from None
    os.utime(path / COMPLETE)  # "last used", for `hpc_tf env prune`
    return record


def _build(root: Path, key: str, request: EnvRequest, choice: str) -> dict[str, Any]:
    """Build in `<key>.tmp-<pid>`, then rename into place; the log stays at `<key>.build.log`."""
    tmp = root / f"{key}.tmp-{os.getpid()}"
    log_path = root / f"{key}.build.log"
    shutil.rmtree(tmp, ignore_errors=True)
    start = time.monotonic()
    with open(log_path, "w") as log:
        try:
            tool = _build_conda(request, tmp, log) if request.kind == "conda" else _build_pip(request, tmp, log, choice)
        except subprocess.CalledProcessError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise EnvBuildError(
                f"building environment {key} failed ({' '.join(map(str, exc.cmd[:3]))}… exited "
                f"{exc.returncode}); see its log: {log_path}"
            ) from None
    freeze = _freeze(tmp, request)
    record = {
        "key": key,
        "path": str(root / key),
        "python": str(env_python(root, key)),
        "tool": tool,
        "request": msgspec.to_builtins(request),
        "freeze": freeze,
        "build_seconds": round(time.monotonic() - start, 2),
        "log": str(log_path),
    }
    (tmp / COMPLETE).write_text(json.dumps(record, indent=1))
    os.rename(tmp, root / key)
    return record


def _run(argv: Sequence[str], log: Any, env: Mapping[str, str] | None = None) -> None:
    log.write("$ " + " ".join(argv) + "\n")
    log.flush()
    subprocess.run(list(argv), stdout=log, stderr=subprocess.STDOUT, check=True, env=env)


def _pip_sources(request: EnvRequest) -> list[str]:
    args = [arg for link in request.find_links for arg in ("--find-links", link)]
    return args + (["--no-index"] if request.no_index else [])


def _build_pip(request: EnvRequest, dest: Path, log: Any, choice: str) -> str:
    """A venv from the base interpreter; uv (relocatable venv) when available, else venv + pip."""
    inherit = ["--system-site-packages"] if request.inherit else []
    reqs = _requirements_file(request, dest)
    uv = uv_command(choice)
    if uv:
        _run([*uv, "venv", "--quiet", "--relocatable", "--python", request.base_python, *inherit, str(dest)], log)
        _inherit_paths(request, dest)
        if request.packages or reqs:
            _run(
                [
                    *uv,
                    "pip",
                    "install",
                    "--python",
                    str(dest / "bin" / "python"),
                    *_pip_sources(request),
                    *request.packages,
                    *(["-r", str(reqs)] if reqs else []),
                ],
                log,
            )
        _cleanup(reqs)
        return "uv"
    _run([request.base_python, "-m", "venv", *inherit, str(dest)], log)
    _inherit_paths(request, dest)
    if request.packages or reqs:
        _run(
            [
                str(dest / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                *_pip_sources(request),
                *request.packages,
                *(["-r", str(reqs)] if reqs else []),
            ],
            log,
        )
    _relocate_scripts(dest)
    _cleanup(reqs)
    return "pip"


def _inherit_paths(request: EnvRequest, dest: Path) -> None:
    """With `inherit`, the job also sees the *submitting* environment's packages (a virtualenv's or conda
    env's site-packages), not only the base interpreter's: a `.pth` file lists them after the env's own."""
    if not (request.inherit and request.inherit_paths):
        return
    for site in (dest / "lib").glob("python*/site-packages"):
        (site / "_hpc_tf_inherit.pth").write_text("".join(f"{path}\n" for path in request.inherit_paths))


def _cleanup(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


def _requirements_file(request: EnvRequest, dest: Path) -> Path | None:
    if not request.requirements:
        return None
    path = dest.parent / f"{dest.name}.requirements.txt"
    path.write_text(request.requirements)
    return path


def _relocate_scripts(dest: Path) -> None:
    """venv + pip write the build path into script shebangs; point them at the final path."""
    final = str(dest.parent / dest.name.split(".tmp-")[0])
    for script in (dest / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            try:
                text = script.read_text()
            except UnicodeDecodeError:
                continue
            if str(dest) in text:
                script.write_text(text.replace(str(dest), final))


def _build_conda(request: EnvRequest, dest: Path, log: Any) -> str:
    tool = conda_tool()
    if tool is None:
        raise EnvBuildError(conda_missing_message())
    files = []
    if request.requirements:
        spec_file = dest.parent / f"{dest.name}.environment.yml"
        spec_file.write_text(request.requirements)
        files = ["--file", str(spec_file)]
    _run([tool, "create", "--yes", "--prefix", str(dest), *request.packages, *files], log)
    return tool


def conda_missing_message() -> str:
    return (
        "conda_packages / conda_dependencies_file need conda, mamba or micromamba on PATH, and none is: "
        "install one (micromamba is a single binary), or use pip_packages / pip_requirements_file, "
        "or load a module that provides conda (modules: [...])"
    )


def _freeze(dest: Path, request: EnvRequest) -> list[str]:
    python = str(dest / "bin" / "python")
    uv = uv_command() if request.kind == "pip" else None
    argv = (
        [*uv, "pip", "freeze", "--python", python]
        if uv
        else [python, "-m", "pip", "freeze", "--disable-pip-version-check"]
    )
    proc = subprocess.run(argv, capture_output=True, text=True)
    return proc.stdout.splitlines() if proc.returncode == 0 else []
