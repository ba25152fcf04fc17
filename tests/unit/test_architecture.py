"""The package's layering, checked on the source against the README's architecture section (its tree and its
layer table are the data here, so the two cannot disagree): the tree lists every module, no import cycles, every
import allowed by the layer table, both pure cores pure, only the backends run Slurm clients, and modules small
enough to read.

Imports are read with `ast` (nothing is imported): top-level and function-level ones alike, relative
ones resolved. An edge goes to what an import statement names: `import a.b` and `from a import b`
(b a submodule) → `a.b`; `from a import name` (not a submodule) → `a`, the package's `__init__`.
The parent packages Python initialises on the way are not edges: they are always loaded first.
Imports under `if TYPE_CHECKING:` never run, so they are left out of the cycle check (not of the
layering rules: a type-level dependency still crosses the layer).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
PACKAGE_DIR = REPO / "hpc_tf"
MAX_LINES = 400


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
        ("from ..core import transitions", "hpc_tf.runs.submit", {"hpc_tf.core.transitions"}),
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


# ---------------------------------------------------------------------------------------------- (b) the README
README = REPO / "README.md"
TREE_LINE = re.compile(r"^(?P<indent> *)(?P<name>[^\s\[]+)(?:\s+\[(?P<layer>[a-z-]+)\])?(?:\s+.*)?$")
TABLE_ROW = re.compile(r"^\| `(?P<layer>[a-z-]+)` \| (?P<may>[^|]+) \|")


def _architecture_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index("## Architecture") :].split("\n## ", 1)[0]


def read_layers(section: str) -> dict[str, set[str]]:
    """The layer table: layer → the layers it may import."""
    rows = [TABLE_ROW.match(line) for line in section.splitlines()]
    return {m["layer"]: set(re.findall(r"`([a-z-]+)`", m["may"])) for m in rows if m}


def read_tree(section: str) -> dict[str, str]:
    """The tree block: each listed path (folders end in /) → its layer (its own tag, else its folder's)."""
    block = section.split("```text\n", 1)[1].split("```", 1)[0]
    found: dict[str, str] = {}
    stack: list[tuple[int, str, str]] = []  # (depth, folder path, layer)
    for line in block.splitlines():
        m = TREE_LINE.match(line)
        assert m, f"README tree line not understood: {line!r}"
        depth = len(m["indent"]) // 2
        stack = [s for s in stack if s[0] < depth]
        parent, inherited = (stack[-1][1], stack[-1][2]) if stack else ("", "")
        path, layer = parent + m["name"], m["layer"] or inherited
        found[path] = layer
        if path.endswith("/"):
            stack.append((depth, path, layer))
    return found


SECTION = _architecture_section()
LAYERS = read_layers(SECTION)
TREE = read_tree(SECTION)


def layer_of(module: str) -> str:
    path = MODULES[module].relative_to(REPO).as_posix()
    return TREE[path]


def test_the_readme_tree_lists_exactly_the_modules_and_folders() -> None:
    on_disk = {p.relative_to(REPO).as_posix() for p in MODULES.values()}
    folders = {p.parent.relative_to(REPO).as_posix() + "/" for p in MODULES.values()}
    folders.add("hpc_tf/sbatch_templates/")
    listed = set(TREE)
    assert sorted(on_disk - listed) == [], "modules missing from the README's architecture tree"
    assert sorted(folders - listed) == [], "folders missing from the README's architecture tree"
    assert sorted(listed - on_disk - folders) == [], "the README's tree lists what does not exist"


def test_every_module_has_a_known_layer() -> None:
    unknown = {m: layer_of(m) for m in MODULES if layer_of(m) not in LAYERS}
    assert not unknown, f"layers not in the README's table: {unknown}"
    assert {"base", "core", "in-job", "backends", "top"} <= set(LAYERS)


def test_every_import_is_allowed_by_the_layer_table() -> None:
    offences = [
        f"{m} [{layer_of(m)}]:{i.line} imports {i.target} [{layer_of(i.target)}]"
        for m in MODULES
        for i in IMPORTS[m]
        if i.target in MODULES and layer_of(i.target) not in LAYERS[layer_of(m)]
    ]
    assert not offences, "imports the README's layer table does not allow:\n" + "\n".join(offences)


CORE = [m for m in MODULES if layer_of(m) == "core"]
FEATURE_CORES = sorted({m.rsplit(".core", 1)[0] + ".core" for m in CORE if not within(m, "hpc_tf.core")})


def test_the_cores_are_where_the_tree_says() -> None:
    assert all(within(m, "hpc_tf.core") or any(within(m, f) for f in FEATURE_CORES) for m in CORE)
    assert "hpc_tf.sweeps.core" in FEATURE_CORES


def test_core_imports_only_cores_and_errors() -> None:
    def allowed(m: str) -> Callable[[str], bool]:
        own = next((f for f in FEATURE_CORES if within(m, f)), "hpc_tf.core")
        return lambda t: not within(t, "hpc_tf") or within(t, "hpc_tf.core") or within(t, own) or t == "hpc_tf.errors"

    offences = [f"{m}:{i.line} imports {i.target}" for m in CORE for i in IMPORTS[m] if not allowed(m)(i.target)]
    assert not offences, "a core must stay pure (the base core never imports a feature's):\n" + "\n".join(offences)


def test_core_starts_no_process() -> None:
    offences = _offences(CORE, lambda t: not within(t, "subprocess"))
    assert not offences, "\n".join(offences)


def _offences(modules: list[str], allowed: Callable[[str], bool]) -> list[str]:
    """`module:line imports target` for every import of `modules` that `allowed` refuses."""
    return [f"{m}:{i.line} imports {i.target}" for m in modules for i in IMPORTS[m] if not allowed(i.target)]


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
    assert not offences, "a core must be a function of its arguments:\n" + "\n".join(offences)


IN_JOB = [m for m in MODULES if layer_of(m) == "in-job"]


def test_the_in_job_side_never_loads_submitit() -> None:
    offences = _offences(IN_JOB, lambda t: t != "hpc_tf.backends.slurm_submit" and not within(t, "submitit"))
    assert not offences, "a job's tasks never import submitit (one owner of the warning signal):\n" + "\n".join(
        offences
    )


SLURM_CLIENTS = {"sbatch", "scontrol", "squeue", "sacct", "scancel", "sinfo"}


def slurm_argvs(module: str) -> list[str]:
    """`module:line` of every list or tuple literal whose first item is a Slurm client's name (an argv)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    return [
        f"{module}:{node.lineno} runs {node.elts[0].value}"
        for node in ast.walk(tree)
        if isinstance(node, (ast.List, ast.Tuple))
        and node.elts
        and isinstance(node.elts[0], ast.Constant)
        and node.elts[0].value in SLURM_CLIENTS
    ]


def test_slurm_argvs_are_found() -> None:
    assert slurm_argvs("hpc_tf.backends.slurm"), "the check below would find nothing"


def test_only_the_backends_run_slurm_clients() -> None:
    offences = [line for m in MODULES if layer_of(m) != "backends" for line in slurm_argvs(m)]
    assert not offences, "only hpc_tf/backends runs Slurm's clients (one client, one failure handling):\n" + "\n".join(
        offences
    )


# ---------------------------------------------------------------------------------------------- (c) size
def test_no_module_is_longer_than_max_lines() -> None:
    lengths = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in MODULES.items()}
    offenders = [
        f"{MODULES[m].relative_to(PACKAGE_DIR.parent)}: {n} lines" for m, n in sorted(lengths.items()) if n > MAX_LINES
    ]
    assert not offenders, f"modules longer than {MAX_LINES} lines:\n" + "\n".join(offenders)
