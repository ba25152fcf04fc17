"""Hostile strings through every string-valued config key, then through real jobs.

The corpus is `tests/data/hostile-strings.json` (shell metacharacters, quotes, `$(...)`, backticks,
redirections, control characters, leading dashes, `#SBATCH` text, Slurm `%` patterns, globs, unicode,
10 KB strings, path traversal, format strings and template syntax, YAML look-alikes). Its token
`PWNED` is replaced by a unique marker path per string (`<marks>/PWNED-<i>`): a string that ever runs
as a command leaves that file behind, and the marker directory must stay empty.

For every key and every string: `validate` exits 0 or 2 without a traceback (a key that takes free text
must accept every string without a newline, CR or NUL). When valid, the job scripts `render` produces for
Slurm and for the local backend are checked without trusting their text:
- `#SBATCH` lines are parsed the way sbatch 22.05 parses them (src/sbatch/opt.c `_get_argument`) and
  must be exactly the planned directives, with the value intact;
- the `exec` line and `module load` lines are split with `shlex` and must be the planned argv;
- every other line is unchanged from the script without the value (keys that never reach the script
  leave it byte-for-byte unchanged);
- all scripts together pass `bash -n`, and are executed by bash with `exec` and `module` defused
  (they print their argv): the printed argv is the planned one and no marker appears.
Real sbatch reads the rendered directives of ~40 strings back (Slurm), and real jobs (local backend,
and one Slurm job) receive ~40 / ~60 strings in argv and environment exactly as written.

Counts ("hostile strings tried / executed") are printed at the end of the module and written to
`hostile-stats.json` in pytest's base temporary directory (and to each real-run test's tmp dir).
"""

from __future__ import annotations

import collections
import functools
import io
import json
import os
import re
import shlex
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from hpc_tf import cli
from hpc_tf._location import package_root
from hpc_tf.api import TensorFlow
from hpc_tf.config.loading import load_spec
from hpc_tf.core.plan import local_plan, slurm_plan
from hpc_tf.errors import ConfigError
from hpc_tf.runs.submit import prepare
from hpc_tf.settings import Settings

from .conftest import REPO

DATA = Path(__file__).parent / "data" / "hostile-strings.json"
CORPUS = json.loads(DATA.read_text(encoding="utf-8"))
TOKEN: str = CORPUS["marker_token"]
RAW: list[str] = [s for items in CORPUS["categories"].values() for s in items]
CATEGORY: list[str] = [cat for cat, items in CORPUS["categories"].items() for _ in items]
UNSAFE = ("\n", "\r", "\x00")  # refused in every string (README "The config")

STATS: dict[str, Any] = {
    "corpus_strings": len(RAW),
    "tried": 0,  # (key, string) pairs validated
    "accepted": 0,
    "refused": 0,
    "scripts_rendered": 0,
    "scripts_executed_defused": 0,
    "per_key": {},
    "sbatch_read_back": 0,
    "executed_local": 0,
    "executed_slurm": 0,
    "problems": 0,
}


def safe(value: str) -> bool:
    return not any(c in value for c in UNSAFE)


def test_corpus_is_big_and_covers_the_categories() -> None:
    assert len(RAW) >= 200 and len(set(RAW)) == len(RAW)
    wanted = {
        "shell": ["$(", "`", "${", ";", "&&", "|", ">", "<", "'", '"'],
        "control": ["\n", "\r", "\x00"],
        "dashes": ["-c", "--version", "-"],
        "sbatch": ["#SBATCH --wrap="],
        "slurm": ["%j", "%x", "%u", "%A"],
        "globs": ["*", "?", "[a]"],
        "unicode": ["\u202e", "\u200f", "😀", "\u0301", "\u200b"],
        "paths": ["../../etc", "~", "\\"],
        "format": ["{0}", "%s", "{{ 7*7 }}", "{% raw %}"],
    }
    for what, needles in wanted.items():
        for needle in needles:
            assert any(needle in s for s in RAW), (what, needle)
    assert max(len(s) for s in RAW) >= 10 * 1024


# --------------------------------------------------------------------------------------------------
# The workspace and the CLI in-process.


@dataclass
class Space:
    root: Path
    marks: Path
    settings: Settings

    def hostile(self, i: int) -> str:
        return RAW[i].replace(TOKEN, f"{self.marks}/{TOKEN}-{i}")

    def markers(self) -> list[str]:
        """Files a hostile command left: in the marker folder, or (a relative `touch`) where bash ran.
        (Files the tests create for entry_script, source_directory and python may carry the token.)"""
        found = [p.name for p in self.marks.iterdir()]
        found += (
            [str(p) for p in (self.root / "defused").rglob(f"*{TOKEN}*")] if (self.root / "defused").exists() else []
        )
        return found


@pytest.fixture(scope="module", autouse=True)
def report(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    started = time.monotonic()
    yield
    STATS["seconds"] = round(time.monotonic() - started, 1)
    out = tmp_path_factory.getbasetemp() / "hostile-stats.json"
    out.write_text(json.dumps(STATS, indent=1))
    executed = STATS["executed_local"] + STATS["executed_slurm"]
    capman = request.config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled():
        print(
            f"\ntest_hostile: {len(RAW)} corpus strings; hostile strings tried {STATS['tried']} (key x string: "
            f"{STATS['accepted']} accepted, {STATS['refused']} refused) / executed {executed} in real jobs "
            f"(local {STATS['executed_local']}, slurm {STATS['executed_slurm']}); scripts rendered "
            f"{STATS['scripts_rendered']}, run defused {STATS['scripts_executed_defused']}; sbatch read back "
            f"{STATS['sbatch_read_back']}; problems {STATS['problems']}; {STATS['seconds']} s; stats: {out}"
        )


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Space]:
    root = tmp_path_factory.mktemp("hostile")
    marks = root / "marks"
    marks.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("HPC_TF_") and not name.startswith("HPC_TF_CLUSTER_"):  # not the test cluster's
                mp.delenv(name)
        mp.setenv("XDG_CONFIG_HOME", str(root / "xdg-config"))
        mp.setenv("XDG_CACHE_HOME", str(root / "xdg-cache"))
        if not os.environ.get("SLURM_CONF"):  # render for Slurm wants one (see test_fuzz.py, render-slurm bug)
            (root / "slurm.conf").write_text("")
            mp.setenv("SLURM_CONF", str(root / "slurm.conf"))
        mp.chdir(root)
        if callable(getattr(cli, "_parser", None)):  # building argparse's parser is most of a call
            mp.setattr(cli, "_parser", functools.lru_cache(maxsize=1)(cli._parser))
        yield Space(root, marks, Settings.from_env())


@dataclass
class Result:
    code: int | None
    stdout: str
    stderr: str
    escaped: str | None


def run_cli(argv: list[str]) -> Result:
    """`hpc_tf.cli.main(argv)` with a UTF-8 stdout and stderr; an exception escaping main() is a traceback."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace", write_through=True)
    saved = sys.stdout, sys.stderr
    code: int | None = None
    escaped = None
    try:
        sys.stdout, sys.stderr = out, err
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 2
    except Exception as exc:
        escaped = "".join(traceback.format_exception(exc))
    finally:
        sys.stdout, sys.stderr = saved
    return Result(
        code,
        out.buffer.getvalue().decode("utf-8", "replace"),  # type: ignore[attr-defined]
        err.buffer.getvalue().decode("utf-8", "replace"),  # type: ignore[attr-defined]
        escaped,
    )


class QuotingDumper(yaml.SafeDumper):
    """Every string double-quoted: read back as the same string by any YAML loader (PyYAML's dumper would
    leave `0o17` plain, which hpc_tf's YAML 1.2 numbers read as 15), non-printables escaped."""


QuotingDumper.add_representer(str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style='"'))


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(
        yaml.dump(data, Dumper=QuotingDumper, allow_unicode=True, sort_keys=False, width=10**9), encoding="utf-8"
    )
    return path


# --------------------------------------------------------------------------------------------------
# Reading scripts back: sbatch's parser, bash's quoting.

_C_SPACE = b" \t\n\v\f\r"


def sbatch_arguments(script: str) -> list[str]:
    """The arguments sbatch 22.05 takes from a script's `#SBATCH` lines (src/sbatch/opt.c,
    `_opt_batch_script` + `_get_argument`): arguments end at unquoted whitespace; `"` or `'` open a
    quote closed by the same character (both removed); a backslash makes the next byte literal; an
    unquoted, unescaped `#` ends the line; an unmatched quote is fatal. Scanning stops at the first line
    that is not blank and not a comment. Lines are split at `\\n` only, as sbatch and bash do."""
    args: list[str] = []
    for line in script.split("\n"):
        raw = line.encode("utf-8", "surrogateescape")
        if not raw.startswith(b"#SBATCH"):
            if raw.strip(_C_SPACE) and not raw.lstrip(_C_SPACE).startswith(b"#"):
                break
            continue
        rest, pos = raw[len(b"#SBATCH") :], 0
        while True:
            while pos < len(rest) and rest[pos] in _C_SPACE:
                pos += 1
            if pos >= len(rest):
                break
            arg, quote, escape = bytearray(), 0, False
            while pos < len(rest) and (quote or rest[pos] not in _C_SPACE):
                ch = rest[pos]
                if escape:
                    escape = False
                elif ch == ord("\\"):
                    escape, pos = True, pos + 1
                    continue
                elif quote:
                    if ch == quote:
                        quote, pos = 0, pos + 1
                        continue
                elif ch in (ord('"'), ord("'")):
                    quote, pos = ch, pos + 1
                    continue
                elif ch == ord("#"):
                    break
                arg.append(ch)
                pos += 1
            if quote:
                raise ValueError(f"sbatch: unmatched {chr(quote)} in {line!r}")
            if not arg:
                break  # a comment, or nothing left
            args.append(arg.decode("utf-8", "surrogateescape"))
    return args


def planned_arguments(spec: Any, options: Any) -> list[str]:
    return [
        f"--{name}" if value is None else f"--{name}={value}"
        for name, value in slurm_plan(spec, options, "python3", "").directives
    ]


def other_lines(script: str) -> list[str]:
    """The script without the lines a config value may legitimately change."""
    return [line for line in script.split("\n") if not line.startswith(("#SBATCH ", "exec ", "module load "))]


def shell_words(script: str, prefix: str) -> list[list[str]]:
    return [shlex.split(line) for line in script.split("\n") if line.startswith(prefix)]


# --------------------------------------------------------------------------------------------------
# The keys: how a value gets into a config, and where it may show up in the script.


def _inside(root: Path, rel: str, allow_root: bool = False) -> Path | None:
    """root/rel when rel is a relative path that stays inside root (nothing is created elsewhere)."""
    if not rel or "\x00" in rel or rel.startswith("~") or os.path.isabs(rel):
        return None
    target = Path(os.path.normpath(root / rel))
    if target == root:
        return target if allow_root else None
    return target if root in target.parents else None


def _create_file(root: Path, rel: str, text: str = "print('hi')\n") -> bool:
    target = _inside(root, rel)
    try:
        if target is None:
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.write_text(text)
        return target.is_file()
    except (OSError, ValueError):
        return False


def _create_source_dir(root: Path, rel: str) -> bool:
    target = _inside(root, rel, allow_root=True)
    try:
        if target is None:
            return False
        target.mkdir(parents=True, exist_ok=True)
        (target / "train.py").write_text("print('hi')\n")
        return True
    except (OSError, ValueError):
        return False


def base(**extra: Any) -> dict[str, Any]:
    return {"source_directory": "src", "entry_script": "train.py", **extra}


@dataclass(frozen=True)
class Key:
    name: str
    build: Callable[[str, Path], dict[str, Any]]
    enters: str  # "none": never in the script; "sbatch": one #SBATCH value; "exec": the launcher line; "module"
    context: dict[str, Any] = field(default_factory=dict)  # the other keys the value needs
    option: str | None = None  # the #SBATCH option that carries it ("sbatch")
    free_text: bool = False  # every string without newline, CR or NUL is accepted
    non_empty: bool = False


def _entry_script(value: str, keydir: Path) -> dict[str, Any]:
    _create_file(keydir / "src", value)
    return base(entry_script=value)


def _source_directory(value: str, keydir: Path) -> dict[str, Any]:
    _create_source_dir(keydir, value)
    return base(source_directory=value)


def _python(value: str, keydir: Path) -> dict[str, Any]:
    _create_file(keydir, value, "#!/bin/sh\n")
    return base(python=value)


def _target(name: str) -> Key:
    return Key(
        f"compute_target.{name}",
        lambda v, _: base(compute_target={name: v}),
        "sbatch",
        option=name,
        free_text=name not in ("mem", "time"),
    )


MPI = {"distributed_backend": "mpi"}
KEYS = [
    Key("script_params.KEY", lambda v, _: base(script_params={v: "1"}), "none", free_text=True, non_empty=True),
    Key("script_params.--x", lambda v, _: base(script_params={"--x": v}), "none", free_text=True),
    Key("script_params.--x[list]", lambda v, _: base(script_params={"--x": [v, "b"]}), "none", free_text=True),
    Key(
        "environment_variables.HOSTILE", lambda v, _: base(environment_variables={"HOSTILE": v}), "none", free_text=True
    ),
    Key("experiment", lambda v, _: base(experiment=v), "sbatch", option="job-name"),
    *[_target(name) for name in ("partition", "account", "qos", "constraint", "exclude", "reservation", "mem", "time")],
    Key(
        "compute_target.additional_parameters.comment",
        lambda v, _: base(compute_target={"additional_parameters": {"comment": v}}),
        "sbatch",
        option="comment",
        free_text=True,
    ),
    Key(
        "compute_target.additional_parameters.NAME",
        lambda v, _: base(compute_target={"additional_parameters": {v: "x"}}),
        "sbatch",
    ),
    Key("launcher_args", lambda v, _: base(**MPI, launcher_args=[v]), "exec", MPI, free_text=True, non_empty=True),
    Key("mpi_plugin", lambda v, _: base(**MPI, mpi_plugin=v), "exec", MPI),
    Key("modules", lambda v, _: base(modules=[v]), "module", {"modules": ["gcc/12"]}),
    Key("metric_patterns.m", lambda v, _: base(metric_patterns={"m": v}), "none"),
    Key("metric_patterns.NAME", lambda v, _: base(metric_patterns={v: "loss=(.*)"}), "none"),
    Key("pip_packages", lambda v, _: base(pip_packages=[v]), "none"),
    Key("pip_find_links", lambda v, _: base(pip_packages=["numpy"], pip_find_links=[v]), "none"),
    Key("entry_script", _entry_script, "none"),
    Key("source_directory", _source_directory, "none"),
    Key("python", _python, "none"),
]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def plans(spec: Any, target: Any) -> dict[str, Any]:
    """What prepare() plans for each backend (the same arguments it passes)."""
    as_root = os.geteuid() == 0
    return {
        "slurm": slurm_plan(spec, target.options, sys.executable, package_root(), as_root),
        "local": local_plan(spec, sys.executable, package_root(), as_root),
    }


def render_both(space: Space, config: Path) -> tuple[Any, Any, dict[str, str]]:
    """render's own path (TensorFlow.from_yaml, target, prepare) for both backends, without the print."""
    spec = load_spec(config)
    target = TensorFlow.from_spec(spec, space.settings).target()
    scripts = {b: prepare(spec, space.settings, b, probe=False).script for b in ("slurm", "local")}
    return spec, target, scripts


@dataclass
class Rendered:
    label: str
    script: str
    expected: list[str]  # what the defused script prints: module calls, then the launch argv


def check_script(
    key: Key, value: str, backend: str, script: str, plan: Any, spec: Any, target: Any, baseline: str
) -> list[str]:
    problems = []
    if key.enters == "none":
        if script != baseline:
            problems.append("the script changed although this key never enters it")
        return problems
    if other_lines(script) != other_lines(baseline):
        problems.append("lines other than #SBATCH / exec / module load changed")
    if backend == "slurm":
        try:
            args = sbatch_arguments(script)
        except ValueError as exc:
            args = [str(exc)]
        planned = planned_arguments(spec, target.options)
        if args != planned:
            problems.append(f"sbatch reads {args!r}, planned {planned!r}")
        if key.enters == "sbatch":
            option = key.option or value.replace("_", "-")
            shown = f"--{option}={value if key.option else 'x'}"
            if shown not in args:
                problems.append(f"sbatch does not read {shown!r} (reads {args!r})")
    execs = shell_words(script, "exec ")
    if execs != [["exec", *plan.launch]]:
        problems.append(f"exec line reads {execs!r}, planned {plan.launch!r}")
    elif key.name == "launcher_args" and value not in execs[0]:
        problems.append("the launcher argument is not one argv element")
    elif key.name == "mpi_plugin" and backend == "slurm" and f"--mpi={value}" not in execs[0]:
        problems.append("--mpi=VALUE is not one argv element")
    modules = shell_words(script, "module load ")
    if modules != [["module", "load", m] for m in spec.modules]:
        problems.append(f"module lines read {modules!r}, planned {spec.modules!r}")
    return problems


def run_defused(space: Space, rendered: list[Rendered], label: str) -> list[str]:
    """All scripts through `bash -n` at once, then run by one bash, each in a subshell, with `exec` and
    `module` replaced by printing their argv (NUL-separated): what bash hands over must be the plan."""
    if not rendered:
        return []
    problems = []
    syntax = "".join(f"__script_{n}() {{\n{r.script}\n}}\n" for n, r in enumerate(rendered))
    proc = subprocess.run(["bash", "-n"], input=syntax.encode("utf-8", "surrogateescape"), capture_output=True)
    if proc.returncode != 0:
        for r in rendered:
            one = subprocess.run(["bash", "-n"], input=r.script.encode("utf-8", "surrogateescape"), capture_output=True)
            if one.returncode:
                problems.append(f"{r.label}: bash -n: {one.stderr.decode(errors='replace')[:300]}")
        return problems or [f"bash -n failed on the combined scripts: {proc.stderr[:500]!r}"]
    parts = ["module() { printf '%s\\0' module \"$@\"; }\n"]
    for n, r in enumerate(rendered):
        body = "\n".join(
            "printf '%s\\0' " + line[len("exec ") :] if line.startswith("exec ") else line
            for line in r.script.split("\n")
        )
        parts.append(f"printf '%s\\0' '@@script {n}@@'\n(\n{body}\n)\n")
    cwd = space.root / "defused" / _slug(label)
    cwd.mkdir(parents=True, exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), "LC_ALL": "C.UTF-8"}
    combined = cwd.parent / f"{_slug(label)}.sh"
    combined.write_bytes("".join(parts).encode("utf-8", "surrogateescape"))
    proc = subprocess.run(["bash", str(combined)], cwd=cwd, env=env, capture_output=True, timeout=120)
    STATS["scripts_executed_defused"] += len(rendered)
    tokens = [t.decode("utf-8", "surrogateescape") for t in proc.stdout.split(b"\0")[:-1]]
    printed: dict[int, list[str]] = {}
    current = None
    for tok in tokens:
        m = re.fullmatch(r"@@script (\d+)@@", tok)
        if m:
            current = int(m.group(1))
            printed[current] = []
        elif current is not None:
            printed[current].append(tok)
    for n, r in enumerate(rendered):
        if printed.get(n) != r.expected:
            problems.append(f"{r.label}: bash ran {printed.get(n)!r}, planned {r.expected!r}")
    if proc.stderr.strip():
        problems.append(f"bash said: {proc.stderr.decode(errors='replace')[:500]}")
    return problems


@pytest.mark.parametrize("key", KEYS, ids=[k.name for k in KEYS])
def test_every_hostile_string_through_every_key(space: Space, key: Key) -> None:
    keydir = space.root / "keys" / _slug(key.name)
    (keydir / "src").mkdir(parents=True)
    (keydir / "src" / "train.py").write_text("print('hi')\n")
    base_spec, base_target, baseline = render_both(space, write_yaml(keydir / "base.yaml", base(**key.context)))
    assert base_spec is not None and base_target is not None
    counts = collections.Counter()
    problems: list[str] = []
    rendered: list[Rendered] = []
    for i in range(len(RAW)):
        value = space.hostile(i)
        label = f"[{i} {CATEGORY[i]}] {value[:80]!r}"
        config = write_yaml(keydir / f"c{i}.yaml", key.build(value, keydir))
        counts["tried"] += 1
        result = run_cli(["validate", str(config)])
        if result.escaped or "Traceback" in result.stderr or result.code not in (0, 2):
            problems.append(f"{label}: validate exit {result.code}: {(result.escaped or result.stderr)[-800:]}")
            continue
        if result.code == 2:
            counts["refused"] += 1
            if not result.stderr.startswith("hpc_tf: error:") or str(config) not in result.stderr:
                problems.append(f"{label}: the message does not start right or name the file: {result.stderr[:300]}")
            if key.free_text and safe(value) and (value or not key.non_empty):
                problems.append(f"{label}: refused: {result.stderr.strip()[-300:]}")
            continue
        counts["accepted"] += 1
        if not safe(value):
            problems.append(f"{label}: accepted a value with a newline, CR or NUL")
        try:
            spec, target, scripts = render_both(space, config)
        except ConfigError as exc:
            problems.append(f"{label}: validate accepted it, render refused it: {exc}")
            continue
        except Exception:
            problems.append(f"{label}: render raised:\n{traceback.format_exc()[-800:]}")
            continue
        for backend, plan in plans(spec, target).items():
            script = scripts[backend]
            for p in check_script(key, value, backend, script, plan, spec, target, baseline[backend]):
                problems.append(f"{label} [{backend}]: {p}")
            expected = [w for m in spec.modules for w in ("module", "load", m)] + list(plan.launch)
            rendered.append(Rendered(f"{label} [{backend}]", script, expected))
    counts["scripts"] = len(rendered)
    problems += run_defused(space, rendered, key.name)
    marks = space.markers()
    if marks:
        problems.append(f"marker files appeared (a value ran as a command): {marks[:20]}")
    STATS["per_key"][key.name] = dict(counts, problems=len(problems))
    for name in ("tried", "accepted", "refused"):
        STATS[name] += counts[name]
    STATS["scripts_rendered"] += len(rendered)
    STATS["problems"] += len(problems)
    assert not problems, f"{len(problems)} problems for {key.name}:\n" + "\n".join(problems[:25])


# --------------------------------------------------------------------------------------------------
# Directives that must not be reachable or contradictory (found with the corpus and real sbatch).


def _validate(space: Space, name: str, data: dict[str, Any]) -> tuple[Result, Path]:
    folder = space.root / "cases" / name
    (folder / "src").mkdir(parents=True, exist_ok=True)
    (folder / "src" / "train.py").write_text("pass\n")
    config = write_yaml(folder / "c.yaml", data)
    return run_cli(["validate", str(config)]), config


@pytest.mark.parametrize("name", ["tasks_per_node", "tasks", "ntasks_per_node"])
def test_additional_parameters_cannot_set_the_layout_through_an_sbatch_alias(space: Space, name: str) -> None:
    """`--tasks-per-node` is sbatch's alias of `--ntasks-per-node` (and getopt takes `--tasks` as its
    abbreviation): with the dev cluster, `sbatch --ntasks-per-node=1 --tasks-per-node=2` gives a job with
    NtasksPerN=2. hpc_tf sets ntasks-per-node itself, so these must be refused like `ntasks_per_node`."""
    result, _ = _validate(space, f"alias-{name}", base(compute_target={"additional_parameters": {name: 4}}))
    assert result.escaped is None
    assert result.code == 2, f"additional_parameters.{name} accepted: the job's #SBATCH layout would change"
    assert name in result.stderr


def test_requeue_null_does_not_give_contradicting_directives(space: Space) -> None:
    """README: in additional_parameters `null` is a bare flag, so `requeue: null` asks for `--requeue`;
    the planned directives must not also say `--no-requeue` (sbatch takes the last one)."""
    result, config = _validate(space, "requeue-null", base(compute_target={"additional_parameters": {"requeue": None}}))
    assert result.code == 0, result.stderr
    _, _, scripts = render_both(space, config)
    args = sbatch_arguments(scripts["slurm"])
    assert not ("--requeue" in args and "--no-requeue" in args), args


def test_module_names_are_never_read_as_options(space: Space) -> None:
    """`module load -x`: a module name that starts with '-' is read by `module` as an option (entry_script
    gets `./` for the same reason). Every corpus string the `modules` check accepts must not start with '-'."""
    accepted_dashes = []
    for i, raw in enumerate(RAW):
        if not raw.startswith("-"):
            continue
        result, _ = _validate(space, f"module-{i}", base(modules=[raw]))
        assert result.escaped is None
        if result.code == 0:
            accepted_dashes.append(raw)
    assert not accepted_dashes, f"module names accepted and rendered as `module load NAME`: {accepted_dashes}"


# --------------------------------------------------------------------------------------------------
# Real jobs: what the entry script receives.

DUMP = """\
import json, os, sys
os.makedirs("outputs", exist_ok=True)
env = {k: v for k, v in os.environ.items() if k.startswith("HOSTILE_")}
with open("outputs/received.json", "w", encoding="utf-8") as f:
    json.dump({"argv": sys.argv[1:], "env": env, "script": os.path.basename(sys.argv[0])}, f)
"""


SLURM_COMMENT_MAX = 1024  # bytes; a longer --comment: "Pathname of a file, directory or other parameter too long"


def sample(count: int, *, with_longest: bool = True) -> list[int]:
    """`count` corpus indices spread over the whole corpus (so over every category), all accepted values;
    with the 10 KB string, or without `with_longest` only strings that fit a Slurm comment."""
    usable = [i for i, s in enumerate(RAW) if safe(s) and s]
    longest = max(usable, key=lambda i: len(RAW[i]))
    if not with_longest:
        usable = [i for i in usable if len(RAW[i].encode()) + 80 <= SLURM_COMMENT_MAX]  # 80: the marker path
    step = max(1, len(usable) // count)
    picked = usable[::step][:count]
    return picked if not with_longest or longest in picked else [*picked[:-1], longest]


def expected_argv(params: dict[str, Any]) -> list[str]:
    argv: list[str] = []
    for key, value in params.items():
        argv += [key] if value is None else [key, value]
    return argv


def cli_subprocess(args: list[str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPC_TF_")}
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run(
        [sys.executable, "-m", "hpc_tf", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def submit_and_read(config: Path, backend: str, runs: Path, cwd: Path) -> tuple[dict[str, Any], Path]:
    proc = cli_subprocess(
        ["submit", str(config), "--backend", backend, "--wait", "--json", "--runs-dir", str(runs)], cwd
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = Path(json.loads(proc.stdout.strip().splitlines()[-1])["run_dir"])
    return json.loads((run_dir / "outputs" / "received.json").read_text(encoding="utf-8")), run_dir


def no_markers(*roots: Path) -> list[str]:
    """Files a relative `touch PWNED` would leave (the tests' own folders may carry the token in longer names)."""
    return [
        str(p) for root in roots for p in root.rglob(f"{TOKEN}*") if p.name == TOKEN or p.name.startswith(f"{TOKEN}-")
    ]


def test_hostile_values_reach_a_local_job_literally(tmp_path: Path) -> None:
    """Two local jobs (`submit --backend local --wait`): ~40 corpus strings as script_params values and keys
    and as environment_variables values; then a source_directory and an entry_script named by corpus
    strings. The entry script receives each exactly; no marker file appears anywhere."""
    marks = tmp_path / "marks"
    marks.mkdir()
    values = {i: RAW[i].replace(TOKEN, f"{marks}/{TOKEN}-{i}") for i in sample(40)}
    params: dict[str, Any] = {f"--p{i}": v for i, v in values.items()}
    params.update({v: None for i, v in values.items() if i % 3 == 0 and v not in params})  # as bare flags too
    env = {f"HOSTILE_{i}": v for i, v in values.items()}
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text(DUMP)
    config = write_yaml(
        tmp_path / "job1.yaml",
        {**base(), "experiment": "hostile-local", "script_params": params, "environment_variables": env},
    )
    got, run_dir = submit_and_read(config, "local", tmp_path / "runs", tmp_path)
    assert got["argv"] == expected_argv(params)
    assert got["env"] == env

    # Job 2: the source folder and the entry script carry corpus strings (path components, marker relative).
    names = [i for i in sample(400) if "/" not in RAW[i] and RAW[i] not in (".", "..") and len(RAW[i].encode()) < 200]
    folder_i = next(i for i in names if "$(" in RAW[i] and not RAW[i].startswith("~"))
    script_i = next(i for i in names if "`" in RAW[i] and i != folder_i)
    dash_i = next(i for i in names if RAW[i].startswith("--"))
    folder = tmp_path / RAW[folder_i]
    folder.mkdir()
    (folder / RAW[script_i]).write_text(DUMP)
    params2 = {RAW[dash_i]: None, "--v": RAW[script_i], RAW[folder_i]: RAW[folder_i]}
    config2 = write_yaml(
        tmp_path / "job2.yaml",
        {
            "source_directory": RAW[folder_i],
            "entry_script": RAW[script_i],
            "experiment": "hostile-local2",
            "script_params": params2,
        },
    )
    got2, run_dir2 = submit_and_read(config2, "local", tmp_path / "runs", tmp_path)
    assert got2["argv"] == expected_argv(params2)
    assert got2["script"] == RAW[script_i]
    leftovers = no_markers(tmp_path) + [str(p) for p in marks.iterdir()]
    assert not leftovers, f"a hostile string ran as a command: {leftovers}"
    executed = len(set(values.values()) | {RAW[folder_i], RAW[script_i], RAW[dash_i]})
    STATS["executed_local"] += executed
    (tmp_path / "hostile-executed.json").write_text(
        json.dumps({"tried": len(values) + 3, "executed": executed, "run_dirs": [str(run_dir), str(run_dir2)]})
    )
    print(f"hostile strings tried {len(values) + 3} / executed {executed} (local backend)")


@pytest.mark.slurm
def test_hostile_values_reach_a_slurm_job_literally(slurm: dict, tmp_path: Path) -> None:
    """One Slurm job carrying ~60 corpus strings (script_params values and keys, environment_variables
    values, and an #SBATCH --comment): received exactly, no marker file anywhere."""
    marks = tmp_path / "marks"
    marks.mkdir()
    values = {i: RAW[i].replace(TOKEN, f"{marks}/{TOKEN}-{i}") for i in sample(60)}
    params: dict[str, Any] = {f"--p{i}": v for i, v in values.items()}
    params.update({v: None for i, v in values.items() if i % 4 == 1 and v not in params})
    env = {f"HOSTILE_{i}": v for i, v in values.items()}
    comment_i = next(i for i, s in enumerate(RAW) if CATEGORY[i] == "sbatch" and TOKEN in s and '"' in s and safe(s))
    comment = RAW[comment_i].replace(TOKEN, f"{marks}/{TOKEN}-{comment_i}")
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text(DUMP)
    config = write_yaml(
        tmp_path / "job.yaml",
        {
            **base(),
            "experiment": "hostile-slurm",
            "script_params": params,
            "environment_variables": env,
            "compute_target": {"additional_parameters": {"comment": comment}},
        },
    )
    got, run_dir = submit_and_read(config, "slurm", tmp_path / "runs", tmp_path)
    assert got["argv"] == expected_argv(params)
    assert got["env"] == env
    job_id = json.loads((run_dir / "status.json").read_text())["job_id"]
    stored = subprocess.run(
        ["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%k"], capture_output=True, text=True
    ).stdout
    assert stored.rstrip("\n") in (comment, "")  # "" once the job has left squeue
    leftovers = no_markers(tmp_path) + [str(p) for p in marks.iterdir()]
    assert not leftovers, f"a hostile string ran as a command: {leftovers}"
    executed = len(set(values.values()) | {comment})
    STATS["executed_slurm"] += executed
    (tmp_path / "hostile-executed.json").write_text(
        json.dumps({"tried": len(values) + 1, "executed": executed, "run_dir": str(run_dir)})
    )
    print(f"hostile strings tried {len(values) + 1} / executed {executed} (slurm)")


@pytest.mark.slurm
def test_sbatch_reads_rendered_directives_back_exactly(slurm: dict, tmp_path: Path) -> None:
    """~40 corpus strings as `additional_parameters.comment` of held jobs: the script hpc_tf renders is
    given to the real sbatch, which must store the comment exactly and the layout hpc_tf planned
    (one node, one task per node, no requeue, the job name), and nothing else (no injected option)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text("pass\n")
    marks = tmp_path / "marks"
    marks.mkdir()
    picked = sample(40, with_longest=False)
    jobs: dict[str, str] = {}
    failures = []
    try:
        for i in picked:
            value = RAW[i].replace(TOKEN, f"{marks}/{TOKEN}-{i}")
            config = write_yaml(
                tmp_path / f"c{i}.yaml",
                {
                    **base(),
                    "experiment": "hostile-sbatch",
                    "compute_target": {"additional_parameters": {"comment": value, "hold": True}},
                },
            )
            rendered = cli_subprocess(["render", str(config), "--backend", "slurm"], tmp_path)
            assert rendered.returncode == 0, rendered.stderr
            script = tmp_path / f"c{i}.sh"
            script.write_text(rendered.stdout, encoding="utf-8")
            proc = subprocess.run(
                ["sbatch", "--parsable", f"--chdir={tmp_path}", str(script)], capture_output=True, text=True
            )
            if proc.returncode != 0:
                failures.append(f"[{i}] {value[:60]!r}: sbatch refused: {proc.stderr.strip()}")
                continue
            jobs[proc.stdout.strip().split(";")[0]] = value
        for job_id, value in jobs.items():
            stored = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%k"], capture_output=True, text=True).stdout
            if stored.rstrip("\n") != value:
                failures.append(f"job {job_id}: comment stored as {stored.rstrip()[:100]!r}, written {value[:100]!r}")
            fields = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True).stdout
            for want in (
                r"JobName=hostile-sbatch",
                r"NumNodes=1(-1)?",
                r"NumTasks=1",
                r"Requeue=0",
                r"Reason=JobHeldUser",
            ):
                if not re.search(rf"(^| ){want}( |$)", fields):
                    failures.append(f"job {job_id} ({value[:60]!r}): {want} not in scontrol's record")
            STATS["sbatch_read_back"] += 1
    finally:
        if jobs:
            subprocess.run(["scancel", *jobs], capture_output=True)
    assert not list(marks.iterdir())
    assert not failures, "\n".join(failures)
