"""Rendering job scripts from the Jinja2 templates in `sbatch_templates/`: the one place values are quoted.

Templates are looked up first in a site directory (`Settings.template_dir`, from HPC_TF_TEMPLATE_DIR)
and then in the templates shipped with hpc_tf, so a site can
override `slurm.sh.j2` or `local.sh.j2` (or a block they include) without forking the package.
"""

from __future__ import annotations

import functools
import re
import shlex
from pathlib import Path
from typing import Any, Iterable

from .._version import __version__
from ..core.plan import ScriptPlan
from ..errors import UsageError

TEMPLATE_NAMES = {"slurm": "slurm.sh.j2", "local": "local.sh.j2"}
_SBATCH_PLAIN = re.compile(r"^[A-Za-z0-9_.,:/@%+=-]+$")


def builtin_template_dir() -> Path:
    """The shipped templates: package data of hpc_tf (`hpc_tf/sbatch_templates/`), installed or in a checkout."""
    folder = Path(__file__).resolve().parent.parent / "sbatch_templates"
    if not (folder / "slurm.sh.j2").is_file():
        raise FileNotFoundError(f"hpc_tf's sbatch_templates directory is missing (looked in {folder})")
    return folder


def sh_quote(value: object) -> str:
    """Quote one value for bash."""
    return shlex.quote(str(value))


def sh_join(argv: Iterable[object]) -> str:
    """Quote an argument list for bash, once."""
    return " ".join(shlex.quote(str(a)) for a in argv)


def needs_sbatch_quoting(value: str) -> bool:
    return not _SBATCH_PLAIN.match(value)


def sbatch_quote(value: str) -> str:
    """Quote a value for an `#SBATCH` line.

    sbatch parses these lines itself, not through a shell: it understands double quotes and
    backslash escapes, treats single quotes literally and an unescaped '#' as a comment.
    """
    if _SBATCH_PLAIN.match(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("#", "\\#")
    return f'"{escaped}"'


def sbatch_directive(item: tuple[str, str | None]) -> str:
    """One `--option[=value]` for an `#SBATCH` line; option names are validated upstream."""
    name, value = item
    if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
        raise ValueError(f"invalid sbatch option name {name!r}")
    return f"--{name}" if value is None else f"--{name}={sbatch_quote(value)}"


def _bytecode_cache(cache_dir: str | None) -> Any:  # jinja2.BytecodeCache | None, imported lazily
    """Compiled templates cached on disk: compiling them is most of a render's own time.

    Entries are keyed by the template's source, so an edited template is recompiled.
    """
    import jinja2

    if not cache_dir:
        return None
    try:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(cache_dir)


@functools.lru_cache(maxsize=8)
def _environment(site_dir: str | None, cache_dir: str | None) -> Any:  # jinja2.Environment, imported lazily
    import jinja2

    dirs = ([site_dir] if site_dir else []) + [str(builtin_template_dir())]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(dirs),
        bytecode_cache=_bytecode_cache(cache_dir),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # `verbatim` marks the one deliberate exception to quoting: the config's `setup` lines are shell.
    env.filters.update(sh=sh_quote, shjoin=sh_join, sbatch_directive=sbatch_directive, verbatim=str)
    return env


def render_script(plan: ScriptPlan, site_dir: str | None = None, cache_dir: str | None = None) -> str:
    """The job script for a plan; every value reaches the text through a quoting filter.

    A script is a pure function of the plan and the template files: with a cache directory, it is kept
    under a key made of both (and hpc_tf's version), so a submission whose script is already known (a
    resubmission, a sweep's next trial: parameters never enter the script) does not even import Jinja2."""
    key = _script_key(plan, site_dir) if cache_dir else None
    cached = Path(cache_dir, "scripts", f"{key}.sh") if cache_dir and key else None
    if cached is not None:
        try:
            return cached.read_text(encoding="utf-8")
        except OSError:
            pass
    text = _render(plan, site_dir, cache_dir)
    if cached is not None:
        _keep(cached, text)
    return text


def _render(plan: ScriptPlan, site_dir: str | None, cache_dir: str | None) -> str:
    """The script from the templates; a site template that cannot be read or rendered is the site's error, named
    with its file and line (exit 2), never a traceback."""
    import jinja2

    try:
        return _render_with(plan, site_dir, cache_dir)
    except (jinja2.TemplateError, UnicodeDecodeError, OSError, TypeError, ValueError) as exc:
        if not site_dir and isinstance(exc, (TypeError, ValueError)):
            raise  # the shipped templates misused: hpc_tf's own bug, with its traceback
        where = getattr(exc, "filename", None) or TEMPLATE_NAMES[plan.backend]
        line = getattr(exc, "lineno", None)
        origin = f"HPC_TF_TEMPLATE_DIR={site_dir}" if site_dir else "the shipped templates"
        raise UsageError(
            f"the job script template {where}{f', line {line}' if line else ''} ({origin}) cannot be used: "
            f"{type(exc).__name__}: {exc}"
        ) from None


def _render_with(plan: ScriptPlan, site_dir: str | None, cache_dir: str | None) -> str:
    template = _environment(site_dir, cache_dir).get_template(TEMPLATE_NAMES[plan.backend])
    return str(
        template.render(
            version=__version__,
            backend=plan.backend,
            directives=plan.directives,
            launch=plan.launch,
            package_root=plan.package_root,
            modules=plan.modules,
            setup=plan.setup,
            components=plan.components,
        )
    )


def _script_key(plan: ScriptPlan, site_dir: str | None) -> str | None:
    """A digest of everything a script depends on: the plan, every template file that could be used, hpc_tf's
    version. None when a template folder cannot be read (then nothing is cached)."""
    import msgspec

    digest = _blake2b()(msgspec.json.encode([__version__, plan]), digest_size=20)
    try:
        for folder in ([site_dir] if site_dir else []) + [str(builtin_template_dir())]:
            for path in sorted(Path(folder).glob("*.j2")):
                digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    except OSError:
        return None
    return digest.hexdigest()


def _blake2b() -> Any:
    """hashlib's blake2b without hashlib: importing it loads OpenSSL (~3 ms of a ~110-ms submit); CPython's
    own _blake2 module is what hashlib.blake2b is."""
    try:
        from _blake2 import blake2b
    except ImportError:  # another interpreter
        from hashlib import blake2b
    return blake2b


def _keep(path: Path, text: str) -> None:
    """Store a rendered script for next time; a cache that cannot be written is no error."""
    import os

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass
