"""The package's layering, checked on the source: no import cycles, the pure core stays pure, the in-job
side and the CLI stay at their ends, and modules stay small enough to read.

Imports are read with `ast` (nothing is imported): top-level and function-level ones alike, relative
ones resolved. An edge goes to what an import statement names: `import a.b` and `from a import b`
(b a submodule) → `a.b`; `from a import name` (not a submodule) → `a`, the package's `__init__`.
The parent packages Python initialises on the way are not edges: they are always loaded first.
Imports under `if TYPE_CHECKING:` never run, so they are left out of the cycle check (not of the
layering rules: a type-level dependency still crosses the layer).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent.parent / "hpc_tf"
MAX_LINES = 300


@dataclass(frozen=True)
class Import:
    target: str  # the imported module's dotted name
    line: int
    type_only: bool  # under `if TYPE_CHECKING:`


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module a `from` statement reads from."""
    if not node.level:
        return node.module or ""
    package = module if is_package(module) else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _type_only_nodes(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside `if TYPE_CHECKING:` blocks."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                found |= {id(n) for n in ast.walk(child) if isinstance(n, (ast.Import, ast.ImportFrom))}
    return found


def imports(module: str) -> list[Import]:
    """Every import statement of a module (at any depth), as the modules it names."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    type_only = _type_only_nodes(tree)
    out: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [Import(alias.name, node.lineno, id(node) in type_only) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                target = sub if sub in MODULES else base
                out.append(Import(target, node.lineno, id(node) in type_only))
    return out


IMPORTS: dict[str, list[Import]] = {name: imports(name) for name in MODULES}


def uses(module: str) -> set[str]:
    """Every module (hpc_tf's or not) a module imports, type-only imports included."""
    return {i.target for i in IMPORTS[module]}


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules along it (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


# ---------------------------------------------------------------------------------------------- the reader itself
@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("from . import api", "hpc_tf", {"hpc_tf.api"}),
        ("from .core import transitions", "hpc_tf.submit", {"hpc_tf.core.transitions"}),
        ("from ..core.plan import slurm_plan", "hpc_tf.backends.slurm", {"hpc_tf.core.plan"}),
        ("from ..errors import RunError", "hpc_tf.core.plan", {"hpc_tf.errors"}),
        ("from . import BACKEND_NAMES", "hpc_tf.backends.slurm", {"hpc_tf.backends"}),
        ("from .base import Backend", "hpc_tf.backends", {"hpc_tf.backends.base"}),
        ("import hpc_tf.core", "hpc_tf.api", {"hpc_tf.core"}),
        ("def f():\n    import subprocess\n", "hpc_tf.core.plan", {"subprocess"}),
    ],
    ids=[
        "from-dot-submodule",
        "from-package-submodule",
        "two-levels-up",
        "name-from-module",
        "name-from-package-init",
        "from-in-an-init",
        "import-package",
        "function-level",
    ],
)
def test_the_import_reader(source: str, module: str, expected: set[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The graph below is only as good as this: each rule of the module docstring, on one statement."""
    monkeypatch.setattr(Path, "read_text", lambda self, encoding=None: source)
    assert {i.target for i in imports(module)} == expected


def test_find_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]


# ---------------------------------------------------------------------------------------------- (a) no cycles
def test_the_package_was_found() -> None:
    assert {"hpc_tf", "hpc_tf.core", "hpc_tf.core.transitions", "hpc_tf.rundir", "hpc_tf.job"} <= set(MODULES)


def test_no_import_cycle() -> None:
    graph = {
        name: {i.target for i in found if i.target in MODULES and not i.type_only} for name, found in IMPORTS.items()
    }
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


# ---------------------------------------------------------------------------------------------- (b) layering
def _offences(modules: list[str], allowed: Callable[[str], bool]) -> list[str]:
    """`module:line imports target` for every import of `modules` that `allowed` refuses."""
    return [f"{m}:{i.line} imports {i.target}" for m in modules for i in IMPORTS[m] if not allowed(i.target)]


CORE = [m for m in MODULES if within(m, "hpc_tf.core")]


def test_core_imports_only_core_and_errors() -> None:
    offences = _offences(CORE, lambda t: not within(t, "hpc_tf") or within(t, "hpc_tf.core") or t == "hpc_tf.errors")
    assert not offences, "hpc_tf.core must stay pure:\n" + "\n".join(offences)


def test_core_starts_no_process() -> None:
    offences = _offences(CORE, lambda t: not within(t, "subprocess"))
    assert not offences, "\n".join(offences)


def _environment_reads(module: str) -> list[str]:
    """`os.environ` (any use), `os.getenv`, and `from os import environ/getenv`."""
    found = []
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ("environ", "environb", "getenv")
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ):
            found.append(f"{module}:{node.lineno} uses os.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [
                f"{module}:{node.lineno} imports os.{a.name}"
                for a in node.names
                if a.name in ("environ", "environb", "getenv")
            ]
    return found


def test_core_reads_no_environment() -> None:
    offences = [line for m in CORE for line in _environment_reads(m)]
    assert not offences, "hpc_tf.core must be a function of its arguments:\n" + "\n".join(offences)


def test_only_the_job_side_imports_hpc_tf_job() -> None:
    outside = [m for m in MODULES if not within(m, "hpc_tf.job")]
    offences = _offences(outside, lambda t: not within(t, "hpc_tf.job"))
    assert not offences, "the in-job side is started as `python -m hpc_tf.job`, never imported:\n" + "\n".join(offences)


def test_lower_layers_do_not_import_the_cli_or_the_api() -> None:
    lower = [m for m in MODULES if any(within(m, p) for p in ("hpc_tf.core", "hpc_tf.backends", "hpc_tf.job"))]
    offences = _offences(lower, lambda t: not (within(t, "hpc_tf.cli") or t == "hpc_tf.api"))
    assert not offences, "\n".join(offences)


# ---------------------------------------------------------------------------------------------- (c) size
def test_no_module_is_longer_than_300_lines() -> None:
    lengths = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in MODULES.items()}
    offenders = [
        f"{MODULES[m].relative_to(PACKAGE_DIR.parent)}: {n} lines" for m, n in sorted(lengths.items()) if n > MAX_LINES
    ]
    assert not offenders, f"modules longer than {MAX_LINES} lines:\n" + "\n".join(offenders)
