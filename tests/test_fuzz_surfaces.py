"""Property-based fuzzing of the surfaces of issue 19's items: sweep blocks (`hyperdrive:` / `sweep:`), the requeue
keys and per-role placement (`roles:`), through `validate` and `render --backend slurm|local`; and damaged sweep
directories through `sweep status|best|wait|recheck`.

Configs are generated valid (every parameter expression kind in both forms, random/grid/bayesian sampling, every
early-termination policy, HyperDrive's and Azure ML v2's names; every requeue cause, `max_restarts` as a number and
per cause, the checkpoint keys against `max_run_duration_seconds` or a Slurm `compute_target.time`; chief/ps/worker/
evaluator roles with their options under `ps`) and then one or two keys are mutated: wrong types, 0/-1/huge/NaN/inf,
huge strings, non-ASCII digits, lone surrogates, YAML look-alikes written as plain YAML (`010`, `yes`, `1e999`),
nested junk, keys deleted, renamed or added; `--set KEY=VALUE` of the same keys is fuzzed on a valid config of each.
Each command must exit 0 or 2 without a traceback, within a timeout and bounded memory; on 2 stderr starts with
`hpc_tf: error:` and names a key or the file. What validate accepts, render and explain take (on the local backend a
sweep or roles config is refused, exit 2, saying why). Oracles for misreads: a config generated valid is accepted; a
look-alike, a boolean, NaN/inf or text put where a number belongs is refused naming its key; a rendered sweep's
`--array`, a requeue's `--signal`, a roles job's `hetjob` separators are what the config says; an accepted warning
comes before the time limit; trials of an accepted sweep (random and grid drawn, bayesian asked of Optuna) lie within
their expressions.

The bulk runs in-process through `hpc_tf.cli.main` (under an RLIMIT_AS headroom); a sample runs the real
`python -m hpc_tf` under RLIMIT_AS 2 GiB. Sweep directories are made by `submit_sweep` (sbatch stood in for) and
`open_trial`, damaged, and followed in-process with a fake sacct on PATH and a fake clock for `wait --timeout 1`.
Counts go to `fuzz-surfaces-stats.json` in pytest's base temporary directory and are printed at the end.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import functools
import glob
import io
import itertools
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from hpc_tf import cli
from hpc_tf.core.role_checks import NEEDS_SLURM
from hpc_tf.core.spec import MAX_SECONDS

from . import test_fuzz as fuzz  # its workspace record, result type, traceback signature, YAML writer, text

TIMEOUT = 20.0  # seconds per command; each answers in well under one
MEMORY_LIMIT = fuzz.MEMORY_LIMIT  # RLIMIT_AS of the real CLI: 2 GiB
IN_PROCESS_HEADROOM = 2 * 2**30  # RLIMIT_AS of this process during an in-process call: what it has + 2 GiB
EXAMPLES = {"sweep": 450, "requeue": 340, "roles": 340, "--set": 240, "real CLI": 60, "damaged sweep dirs": 260}
EXAMPLES["damage CLI"] = 15
SWEEP_LOCAL_REFUSAL = "sweeps on the local backend are not supported"
KEY_WORDS = (*fuzz.KEY_WORDS, "hyperdrive", "sweep")
COMMANDS = (("validate",), ("render", "--backend", "slurm"), ("render", "--backend", "local"))

FUZZ = settings(
    max_examples=100,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples on every run: CI is reproducible
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.generate],  # no shrinking (see test_fuzz); REGRESSIONS holds minimal inputs
)


SCALE = float(os.environ.get("FUZZ_SURFACES_SCALE", "1"))  # e.g. 0.1 for a quick look, 10 for a long run


def examples(name: str) -> settings:
    return settings(FUZZ, max_examples=max(1, round(EXAMPLES[name] * SCALE)))


# --------------------------------------------------------------------------------------------------
# Bookkeeping, reported at the end of the module.

STATS: dict[str, Any] = {
    "configs_generated": collections.Counter(),  # per surface
    "configs_mutated": collections.Counter(),
    "accepted": collections.Counter(),  # validate exit 0, per surface
    "refusal_oracles_checked": 0,  # a value where a number belongs: refused naming the key
    "render_oracles_checked": 0,
    "trials_drawn": 0,
    "damage_kinds": collections.Counter(),
    "calls": collections.Counter(),
    "exit_codes": collections.Counter(),
    "tracebacks": 0,
    "hangs": 0,
    "memory_blowups": 0,
    "misreads": 0,
    "distinct_tracebacks": collections.Counter(),
    "max_child_rss_mib": 0.0,
    "max_in_process_rss_step_mib": 0.0,
    "seconds": collections.Counter(),
}


@pytest.fixture(scope="module", autouse=True)
def report(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    started = time.monotonic()
    yield
    STATS["seconds"]["module"] = round(time.monotonic() - started, 1)
    out = tmp_path_factory.getbasetemp() / "fuzz-surfaces-stats.json"
    out.write_text(json.dumps(STATS, indent=1, default=dict))
    generated = sum(STATS["configs_generated"].values())
    line = (
        f"test_fuzz_surfaces: configs generated {generated} ({dict(STATS['configs_generated'])}), mutated "
        f"{dict(STATS['configs_mutated'])}, accepted {dict(STATS['accepted'])}; damaged sweep directories "
        f"{sum(STATS['damage_kinds'].values())} ({len(STATS['damage_kinds'])} kinds); refusal oracles "
        f"{STATS['refusal_oracles_checked']}, render oracles {STATS['render_oracles_checked']}, trials drawn "
        f"{STATS['trials_drawn']}; calls {dict(STATS['calls'])}; exit codes {dict(STATS['exit_codes'])}; tracebacks "
        f"{STATS['tracebacks']} ({len(STATS['distinct_tracebacks'])} distinct); hangs {STATS['hangs']}; memory "
        f"blow-ups {STATS['memory_blowups']}; misreads {STATS['misreads']}; largest child maxrss "
        f"{STATS['max_child_rss_mib']:.0f} MiB; largest in-process rss step {STATS['max_in_process_rss_step_mib']:.0f}"
        f" MiB; {STATS['seconds']['module']} s; stats: {out}"
    )
    capman = request.config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled():
        print("\n" + line)
        for sig, count in STATS["distinct_tracebacks"].most_common():
            print(f"  traceback x{count}: {sig}")


# --------------------------------------------------------------------------------------------------
# The workspace: test_fuzz's, plus a fake Slurm on PATH for the sweep commands.

FAKE_SLURM = """#!/bin/sh
# sacct/squeue/scancel/scontrol for the sweep-directory properties: the answer a property chose, else none.
if [ -n "$FUZZ_SLURM_ANSWER" ] && [ -f "$FUZZ_SLURM_ANSWER" ]; then cat "$FUZZ_SLURM_ANSWER"; fi
exit "${FUZZ_SLURM_RC:-0}"
"""
SCRIPT = "import hpc_tf\nhpc_tf.log('val_accuracy', 1.0)\n"


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[fuzz.Workspace]:
    root = tmp_path_factory.mktemp("fuzz-surfaces")
    (root / "src").mkdir()
    (root / "src" / "train.py").write_text(SCRIPT)
    fake = root / "fakebin"
    fake.mkdir()
    for name in ("sacct", "squeue", "scancel", "scontrol"):
        (fake / name).write_text(FAKE_SLURM)
        (fake / name).chmod(0o755)
    (root / "slurm.conf").write_text("")
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("HPC_TF_") and not name.startswith("HPC_TF_CLUSTER_"):
                mp.delenv(name)
        mp.setenv("XDG_CONFIG_HOME", str(root / "xdg-config"))  # no named targets from the real home
        mp.setenv("XDG_CACHE_HOME", str(root / "xdg-cache"))
        mp.setenv("SLURM_CONF", str(root / "slurm.conf"))  # an empty one: no cluster is ever asked
        mp.setenv("PATH", f"{fake}{os.pathsep}{os.environ.get('PATH', '')}")
        mp.chdir(root)
        if callable(getattr(cli, "_parser", None)):  # argparse's parser is most of a call: build each once
            mp.setattr(cli, "_parser", functools.lru_cache(maxsize=16)(cli._parser))
        yield fuzz.Workspace(root, itertools.count())


# --------------------------------------------------------------------------------------------------
# Running the CLI: in-process (the bulk) and the real `python -m hpc_tf` (a sample).


def _vm_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


@contextlib.contextmanager
def memory_headroom() -> Iterator[None]:
    """RLIMIT_AS at what this process maps now + IN_PROCESS_HEADROOM: a call that allocates without bound gets a
    MemoryError (a traceback, counted) instead of taking the machine's memory."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _vm_bytes() + IN_PROCESS_HEADROOM
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_inprocess(argv: list[str], timeout: float = TIMEOUT) -> fuzz.Result:
    """`hpc_tf.cli.main(argv)` with stdout/stderr like a user's UTF-8 terminal; nothing may escape but SystemExit."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace", write_through=True)
    saved = sys.stdout, sys.stderr
    previous = signal.signal(signal.SIGALRM, fuzz._on_alarm)
    code: int | None = None
    escaped: str | None = None
    started, rss = time.monotonic(), _maxrss_mib()
    try:
        sys.stdout, sys.stderr = out, err
        signal.setitimer(signal.ITIMER_REAL, timeout)
        with memory_headroom():
            code = cli.main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 2
    except fuzz._NoAnswer:
        escaped = f"no answer within {timeout} s"
    except Exception as exc:  # an exception escaping main() is a traceback for the user
        escaped = "".join(traceback.format_exception(exc))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        sys.stdout, sys.stderr = saved
    STATS["calls"]["in-process"] += 1
    STATS["max_in_process_rss_step_mib"] = max(STATS["max_in_process_rss_step_mib"], _maxrss_mib() - rss)
    return fuzz.Result(
        argv,
        code,
        out.buffer.getvalue().decode("utf-8", "replace"),  # type: ignore[attr-defined]
        err.buffer.getvalue().decode("utf-8", "replace"),  # type: ignore[attr-defined]
        escaped,
        time.monotonic() - started,
    )


def run_subprocess(ws: fuzz.Workspace, argv: list[str], timeout: float = TIMEOUT) -> fuzz.Result:
    """The real `python -m hpc_tf ARGV`, under RLIMIT_AS 2 GiB and a timeout."""
    env = {**fuzz.cli_env(ws), "PATH": os.environ["PATH"], "SLURM_CONF": os.environ["SLURM_CONF"]}
    env.update({k: v for k, v in os.environ.items() if k.startswith("FUZZ_SLURM_")})
    started = time.monotonic()
    STATS["calls"]["subprocess"] += 1
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "hpc_tf", *argv],
            cwd=ws.root,
            capture_output=True,
            timeout=timeout,
            env=env,
            preexec_fn=fuzz._limit_memory,
        )
    except subprocess.TimeoutExpired as exc:
        err = (exc.stderr or b"").decode("utf-8", "replace")
        return fuzz.Result(argv, None, "", err, f"no answer within {timeout} s", time.monotonic() - started)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    STATS["max_child_rss_mib"] = max(STATS["max_child_rss_mib"], rss)
    stderr = proc.stderr.decode("utf-8", "replace")
    return fuzz.Result(
        argv,
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        stderr,
        stderr if "Traceback" in stderr else None,
        time.monotonic() - started,
    )


def _shown(argv: list[str]) -> str:
    return " ".join(repr(a) if len(a) < 300 else repr(a[:300]) + "..." for a in argv)


def check(result: fuzz.Result, config: Path | None = None, codes: tuple[int, ...] = (0, 2)) -> None:
    """No traceback, no hang, no memory blow-up, an allowed exit status; a config error starts right and says
    where (a key or the file); any other failure says `hpc_tf: error:`."""
    STATS["exit_codes"][str(result.code)] += 1
    text = (result.escaped or "") + result.stderr
    if "MemoryError" in text or result.code in (-9, 137):
        STATS["memory_blowups"] += 1
    if result.escaped and result.escaped.startswith("no answer"):
        STATS["hangs"] += 1
    elif result.escaped or "Traceback" in result.stderr:
        STATS["tracebacks"] += 1
        STATS["distinct_tracebacks"][fuzz._signature(text)] += 1
    shown = _shown(result.argv)
    assert result.escaped is None, f"hpc_tf {shown}:\n{result.escaped}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, f"hpc_tf {shown}:\n{result.stderr[-3000:]}"
    assert result.code in codes, f"hpc_tf {shown}: exit status {result.code}\n{result.stderr[-3000:]}"
    if result.code == 2 and config is not None:
        if result.stderr.startswith("usage:"):  # argparse's own refusal of an argument
            assert "error: argument" in result.stderr, result.stderr
            return
        assert result.stderr.startswith("hpc_tf: error:"), f"hpc_tf {shown}: stderr is\n{result.stderr[:2000]}"
        named = str(config) in result.stderr or any(k in result.stderr for k in KEY_WORDS)
        assert named, f"hpc_tf {shown}: the message names neither a key nor the file:\n{result.stderr[:2000]}"
    elif result.code not in (0, None):
        said = re.search(r"^(hpc_tf: |\d+ decisions rechecked, \d+ differ$)", result.stderr, re.M)
        assert said, f"hpc_tf {shown}: no message:\n{result.stderr[:2000]}"


def misread(condition: bool, message: str) -> None:
    """An oracle: the config was read as something other than what it says."""
    if not condition:
        STATS["misreads"] += 1
    assert condition, message


# --------------------------------------------------------------------------------------------------
# Writing configs: PyYAML's dump with every string double-quoted (test_fuzz), and Raw text written as it is.


class Raw(str):
    """YAML text put into the document as written (`010`, `yes`, `1e999`, `!!int abc`), not as a quoted string."""


def to_document(data: Any) -> str:
    raws: list[str] = []

    def swap(value: Any) -> Any:
        if isinstance(value, Raw):
            raws.append(str(value))
            return f"RAW{len(raws) - 1}RAW"
        if isinstance(value, dict):
            return {swap(k): swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    text = fuzz.to_quoted_yaml(swap(data))
    for i, raw in enumerate(raws):
        text = text.replace(f'"RAW{i}RAW"', raw)
    return text


# --------------------------------------------------------------------------------------------------
# Mutations: one or two keys of a valid config changed.

# Keys whose value is a number (or null where allowed): a look-alike, a boolean, NaN/inf or text there is refused.
NUMERIC_KEYS = {
    "max_total_runs",
    "max_concurrent_runs",
    "max_duration_minutes",
    "seed",
    "evaluation_interval",
    "delay_evaluation",
    "truncation_percentage",
    "slack_factor",
    "slack_amount",
    "max_total_trials",
    "max_concurrent_trials",
    "timeout",
    "upper",
    "min_value",
    "max_value",
    "mu",
    "sigma",
    "q",
    "max_restarts",
    "checkpoint_lead_seconds",
    "checkpoint_every",
    "max_run_duration_seconds",
    "cpus_per_task",
    "gpus_per_node",
    "node_count",
    "process_count_per_node",
    "worker_count",
    "parameter_server_count",
}
REFUSED_RAW = [
    "010",
    "007",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "1e999",
    "-1e999",
    "1e-999",
    "1_000",
    "0b101",
    "1:00:00",
    "2026-01-01",
    ".nan",
    ".NaN",
    ".inf",
    "-.inf",
    "true",
    "FALSE",
    '"3"',
    "'10'",
    "٣",
    "５",
    "[1]",
    "{a: 1}",
    '""',
    '"\\ud800"',
    "!!str 5",
    "1" * 5000,
]
REFUSED_VALUES: list[Any] = [True, False, math.nan, math.inf, -math.inf, "3", "١٢٣", "", [3], {"a": 3}, "\ud800"]
BOUNDARY: list[Any] = [
    0,
    -1,
    1,
    2,
    9,
    10,
    60,
    99,
    100,
    1000,
    1001,
    3600,
    3601,
    40000,
    40001,
    65536,
    65537,
    100000,
    100001,
    5256000,
    5256001,
    MAX_SECONDS,
    MAX_SECONDS + 1,
    2**31,
    2**32 - 1,
    2**32,
    2**63 - 1,
    2**63,
    2**64,
    10**30,
    -(10**30),
    10**400,
    0.0,
    -0.0,
    0.5,
    -0.5,
    1.5,
    1e-13,
    5e-324,
    1e308,
    -1e308,
    -708.5,
    -800,
    -1000,
    709.5,
    710,
    None,
]
LOOKALIKES = [*REFUSED_RAW, "0o17", "0x1F", "+12", "~", "null", "0x" + "f" * 4000, "!!int abc", "!!float x"]
LOOKALIKES += ["!!bool maybe", "&a 1", "*a", "[1, 2", "{a: 1", "!!binary aGk=", '"\\x00"', "'choice(1'", "[]", "{}"]
TEXTS = st.one_of(
    st.sampled_from(fuzz.SPECIAL_TEXT),
    st.sampled_from(fuzz.SURROGATES),
    st.integers(1, 200_000).map(lambda n: "x" * n),
    st.integers(1, 20_000).map(lambda n: "é" * n),
    st.text(alphabet="0123456789١٢٣٠०१२５６:-.eE+_xob ", max_size=12),
    st.text(max_size=12),
)
EXPR_TEXTS = [
    "choice(1",
    "choice()",
    "choice([])",
    "choice(())",
    "randint(0)",
    "randint(-5)",
    "randint(9223372036854775808)",
    "randint(9223372036854775809)",
    "randint(1e3)",
    "randint(True)",
    "uniform(1, 0)",
    "uniform(0, 0)",
    "uniform(-1e308, 1e308)",
    "uniform(0, 1, 2)",
    "uniform(min_value=0, max_value=1)",
    "uniform(True, 2)",
    "loguniform(-800, 0)",
    "loguniform(0, 710)",
    "qloguniform(-6, -1, 1e-13)",
    "normal(0, 0)",
    "normal(0, -1)",
    "normal(1e308, 1e308)",
    "qnormal(0, 1, 0)",
    "qnormal(0, 1, q=0.5)",
    "lognormal(700, 1)",
    "lognormal(-1000, 1)",
    "qlognormal(-800, 1, 1)",
    "quniform(0, 1e300, 1e-300)",
    "quniform(0, 1, 1e308)",
    "choice(range(10**20))",
    "choice(range(100000000000000000000))",
    "choice(range(0, 1000000))",
    "choice(range(1, 5, 0))",
    "choice(range(1.5))",
    "choice(" + ",".join(map(str, range(12000))) + ")",
    "__import__('os').system('true')",
    "choice(1, '1')",
    "choice(True, 'True')",
    "choice(1e16, '1e+16')",
    "choice(1, 1.0)",
    "choice(-0.0, 0.0)",
    "choice(0x" + "f" * 4000 + ")",
    "randint(0x" + "f" * 4000 + ")",
    "uniform(0, 0x" + "f" * 300 + ")",
    "choice(" * 200 + ")" * 200,
    "choice(1, 2) + 1",
    "choice(x=1)",
    "choice('\\ud800')",
    "choice('a\\nb')",
    "choice(nan)",
    "choice(float('nan'))",
    "choice(1e999)",
    "choice(-1e999)",
    "choice(*[1])",
    "choice([1, [2]])",
    "choice(b'x')",
    "choice(None)",
    "choice(...)",
    "choice(1j)",
    "choice(-True)",
    "choice(--1)",
    " choice( 1 ,2 ) ",
    "CHOICE(1)",
    "choice(1)(2)",
    "choice(1,)",
    "normal(mu=0, sigma=1)",
    "x" * 10_001,
]
EXPR_OBJECTS: list[Any] = [
    {"type": "choice", "values": ["choice(1", "2)"]},
    {"type": "choice", "values": list(range(10_001))},
    {"type": "choice", "values": [[1]]},
    {"type": "choice", "values": "abc"},
    {"type": "choice"},
    {"type": "uniform", "min_value": 1},
    {"type": "UNIFORM", "min_value": 0, "max_value": 1},
    {"type": "nope", "min_value": 0},
    {"type": "randint", "upper": 10**30},
    {"type": "randint", "upper": 2**63},
    {"type": "uniform", "min_value": 0, "max_value": 1, "extra": 1},
    {"type": "lognormal", "mu": -1000, "sigma": 1},
    {"type": "quniform", "min_value": 0, "max_value": 10, "q": 0},
    {"type": None},
    {},
]
TYPE_WORDS = ["random", "grid", "bayesian", "sobol", "RandomParameterSampling", "GRID", "", " ", "Bandit"]
TYPE_WORDS += ["BanditPolicy", "MedianStoppingPolicy", "TruncationSelectionPolicy", "NoTerminationPolicy", "none"]
TYPE_WORDS += ["choice", "uniform", "qlognormal", "median_stopping", "truncation_selection", "bandit "]
NEW_KEYS = ["max_total_run", "trial_timeout", "parameter_spaces", "rule", "é", "", "type", "seed", "--lr", "lr"]
NEW_KEYS += ["hyperdrive", "sweep", "requeue", "signal", "time", "partition", "chief", "evaluator", "workers"]


@dataclass
class Mutation:
    op: str
    path: tuple[Any, ...]
    value: Any = None
    refused: bool = False  # the value cannot be a number: the config must be refused, naming the key

    def __repr__(self) -> str:
        shown = repr(self.value)
        return f"Mutation({self.op}, {self.path!r}, {shown[:200]}{'...' if len(shown) > 200 else ''}, {self.refused})"


@dataclass
class Case:
    surface: str
    data: Any
    expect: dict[str, Any] = field(default_factory=dict)  # what a valid config says (for the render oracles)
    mutations: list[Mutation] = field(default_factory=list)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*path, i))


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    return _get(data, path[:-1])


def _refusal_value(draw: st.DrawFn) -> Any:
    return draw(st.one_of(st.sampled_from(REFUSED_RAW).map(Raw), st.sampled_from(REFUSED_VALUES)))


def _any_value(draw: st.DrawFn) -> Any:
    return draw(
        st.one_of(
            st.sampled_from(BOUNDARY),
            st.sampled_from(LOOKALIKES).map(Raw),
            TEXTS,
            fuzz.JUNK,
            st.builds(fuzz._nest, st.integers(20, 40), st.sampled_from(["list", "map"])),
        )
    )


def _replacement(draw: st.DrawFn, path: tuple[Any, ...], old: Any) -> tuple[Any, bool]:
    """A new value for the key at `path`, and whether it must be refused."""
    leaf = path[-1] if path else None
    numeric = leaf in NUMERIC_KEYS or (len(path) >= 2 and path[-2] == "max_restarts")
    if numeric and not isinstance(old, (dict, list)):
        how = draw(st.sampled_from(["refused", "boundary", "boundary", "any"]))
        if how == "refused":
            return _refusal_value(draw), True
        if how == "boundary":
            return draw(st.sampled_from(BOUNDARY)), False
    expression = len(path) >= 2 and path[-2] in ("parameter_space", "search_space")
    if expression and draw(st.booleans()):
        return draw(st.one_of(st.sampled_from(EXPR_TEXTS), st.sampled_from(EXPR_OBJECTS))), False
    if leaf == "type" and draw(st.booleans()):
        return draw(st.sampled_from(TYPE_WORDS)), False
    return _any_value(draw), False


@st.composite
def mutated(draw: st.DrawFn, case: Case, roots: list[tuple[Any, ...]]) -> Case:
    """The case with 0 (a quarter of the time), 1 or 2 of its keys under `roots` changed."""
    data = copy.deepcopy(case.data)
    done: list[Mutation] = []
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2, 2]))):
        candidates = [p for p in _paths(data) if p and any(p[: len(r)] == r for r in roots)]
        if not candidates:
            break
        numeric = [p for p in candidates if p[-1] in NUMERIC_KEYS and not isinstance(_get(data, p), (dict, list))]
        if numeric and draw(st.integers(0, 2)) == 0:  # a third of the time a number's key: the refusal oracle
            candidates = numeric
        path = candidates[draw(st.integers(0, len(candidates) - 1))]
        parent, leaf, old = _parent(data, path), path[-1], _get(data, path)
        op = draw(st.sampled_from(["replace"] * 6 + ["delete", "rename", "add", "wrap"]))
        if op == "replace":
            new, refused = _replacement(draw, path, old)
            parent[leaf] = new
            done.append(Mutation(op, path, new, refused))
        elif op == "delete":
            del parent[leaf]
            done.append(Mutation(op, path))
        elif op == "wrap":
            parent[leaf] = draw(st.sampled_from([[old], {"value": old}, [old, old]]))
            done.append(Mutation(op, path))
        elif isinstance(parent, dict):
            key = draw(st.one_of(st.sampled_from(NEW_KEYS), st.sampled_from(LOOKALIKES).map(Raw), fuzz.TEXT))
            if op == "rename":
                items = [(key if k == leaf else k, v) for k, v in parent.items()]
                parent.clear()
                parent.update(items)
            else:
                target = old if isinstance(old, dict) else parent
                target[key] = _any_value(draw)
            done.append(Mutation(op, path, key))
    return Case(case.surface, data, case.expect, done)


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path)


def _still_there(data: Any, mutation: Mutation) -> bool:
    try:
        return _get(data, mutation.path) is mutation.value
    except (KeyError, IndexError, TypeError):
        return False


# --------------------------------------------------------------------------------------------------
# Sweep blocks, valid: every expression kind in both forms, every sampling, every policy, v1 and v2 names.

KINDS = {
    "random": (
        "choice",
        "randint",
        "uniform",
        "quniform",
        "loguniform",
        "qloguniform",
        "normal",
        "qnormal",
        "lognormal",
        "qlognormal",
    ),
    "grid": ("choice",),
    "bayesian": ("choice", "randint", "uniform", "quniform", "loguniform", "qloguniform"),
}
SAMPLING_WORDS = {
    "random": ["random", "Random", "RandomParameterSampling", "RANDOM"],
    "grid": ["grid", "Grid", "GridParameterSampling"],
    "bayesian": ["bayesian", "Bayesian", "BayesianParameterSampling"],
}
FLAGS = ["--lr", "--batch-size", "--momentum", "-x", "--a.b", "--x_1", "--9", "--drop-out"]
V2_NAMES = ["lr", "batch_size", "momentum", "x9", "a.b"]
CHOICE_SCALARS = st.one_of(
    st.integers(-1000, 1000),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.text(alphabet="abcxyz_-./ é0123456789", min_size=1, max_size=8),
    st.booleans(),
)


def _distinct(values: list[Any]) -> bool:
    """No two values the same number, or the same text once passed to the script (HyperDrive's rule here)."""
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return len({str(v) for v in values}) == len(values) and len(set(numbers)) == len(numbers)


CHOICE_VALUES = st.lists(CHOICE_SCALARS, min_size=1, max_size=6).filter(_distinct)
QUANTA = st.sampled_from([0.01, 0.1, 0.5, 1, 2, 5, 10, 0.001])


def _call(kind: str, args: list[Any], names: tuple[str, ...], keywords: bool) -> str:
    if keywords:
        return f"{kind}({', '.join(f'{n}={a!r}' for n, a in zip(names, args, strict=True))})"
    return f"{kind}({', '.join(repr(a) for a in args)})"


@st.composite
def expression(draw: st.DrawFn, kind: str) -> tuple[Any, dict[str, Any]]:
    """One valid expression of `kind` as a call string or a v2 object, and its arguments."""
    form = draw(st.sampled_from(["call", "call", "keywords", "object"]))
    if kind == "choice":
        how = draw(st.sampled_from(["values", "list", "range"]))
        if how == "range":
            start, count, step = draw(st.integers(-50, 50)), draw(st.integers(1, 20)), draw(st.integers(1, 3))
            values: list[Any] = list(range(start, start + count * step, step))
            return f"choice(range({start}, {start + count * step}, {step}))", {"values": values}
        values = draw(CHOICE_VALUES)
        if form == "object":
            return {"type": "choice", "values": values}, {"values": values}
        inner = ", ".join(repr(v) for v in values)
        return (f"choice([{inner}])" if how == "list" else f"choice({inner})"), {"values": values}
    if kind == "randint":
        args: dict[str, Any] = {"upper": draw(st.one_of(st.integers(1, 1000), st.integers(1, 2**63)))}
    elif kind in ("uniform", "quniform"):
        low = draw(st.floats(-1e6, 1e6))
        args = {"min_value": low, "max_value": low + draw(st.floats(1e-3, 1e6))}
    elif kind in ("loguniform", "qloguniform"):
        low = draw(st.floats(-20, 5))
        args = {"min_value": low, "max_value": low + draw(st.floats(0.01, 5))}
    elif kind in ("normal", "qnormal"):
        args = {"mu": draw(st.floats(-100, 100)), "sigma": draw(st.floats(0.01, 10))}
    else:
        args = {"mu": draw(st.floats(-5, 5)), "sigma": draw(st.floats(0.01, 2))}
    if kind.startswith("q"):
        args["q"] = draw(QUANTA)
    if form == "object":
        return {"type": draw(st.sampled_from([kind, kind.upper(), f" {kind} "])), **args}, args
    return _call(kind, list(args.values()), tuple(args), form == "keywords"), args


@st.composite
def policy(draw: st.DrawFn) -> Any:
    """A valid early-termination policy (or none)."""
    kind = draw(st.sampled_from(["bandit", "bandit", "median", "truncation", "none", "null"]))
    if kind == "null":
        return None
    if kind == "none":
        return draw(st.sampled_from(["none", "NoTerminationPolicy", {"type": "none"}, {"type": None}]))
    block: dict[str, Any] = {}
    if kind == "bandit":
        block["type"] = draw(st.sampled_from(["bandit", "BanditPolicy", "Bandit"]))
        name = draw(st.sampled_from(["slack_factor", "slack_amount"]))
        block[name] = draw(st.one_of(st.floats(0.001, 10), st.integers(1, 5)))
    elif kind == "median":
        block["type"] = draw(st.sampled_from(["median_stopping", "MedianStoppingPolicy", "Median-Stopping"]))
    else:
        block["type"] = draw(st.sampled_from(["truncation_selection", "TruncationSelectionPolicy"]))
        block["truncation_percentage"] = draw(st.integers(1, 99))
    optional = {"evaluation_interval": st.integers(1, 5), "delay_evaluation": st.integers(0, 10)}
    block.update(draw(st.fixed_dictionaries({}, optional=optional)))
    return block


METRIC_NAMES = st.one_of(
    st.sampled_from(["val_accuracy", "loss", "val/acc", "métrique", "m"]),
    st.text(alphabet="abcdefxyz_/.-é0123456789 ", min_size=1, max_size=20).filter(str.strip),
)
GOALS = st.sampled_from(["maximize", "minimize", "MAXIMIZE", "Minimize", "PrimaryMetricGoal.MAXIMIZE", " minimize "])


def _job(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {"source_directory": "src", "entry_script": "train.py"}
    optional = {
        "experiment": st.from_regex(r"[a-z][a-z0-9_-]{0,12}", fullmatch=True),
        "script_params": st.fixed_dictionaries({"--epochs": st.integers(1, 5)}, optional={"--lr": st.just(0.1)}),
        "max_run_duration_seconds": st.integers(200, MAX_SECONDS),
        "compute_target": st.fixed_dictionaries({"partition": st.sampled_from(["gpu", "cpu", "débug"])}),
        "requeue_on": st.sampled_from([["timeout"], ["preemption", "node_failure"]]),
    }
    data.update(draw(st.fixed_dictionaries({}, optional=optional)))
    _backend(draw, data, [None, None, None, "mpi", "ps"])
    return data


@st.composite
def sweep_case(draw: st.DrawFn) -> Case:
    sampling = draw(st.sampled_from(["random", "random", "grid", "bayesian"]))
    v2 = draw(st.booleans())
    count = draw(st.integers(1, 4))
    names = draw(st.lists(st.sampled_from(V2_NAMES if v2 else FLAGS), min_size=count, max_size=count, unique=True))
    if v2:  # a name without a leading '-' is the flag --name; also the flags themselves
        names = [n if draw(st.integers(0, 3)) else f"--{n}" for n in names]
    space, args = {}, {}
    for name in names:
        kind = draw(st.sampled_from(KINDS[sampling]))
        space[name], args[name] = draw(expression(kind))
        args[name]["kind"] = kind
    grid = math.prod(len(a["values"]) for a in args.values()) if sampling == "grid" else None
    top = 200 if sampling != "random" else 5000
    runs = draw(st.one_of(st.integers(1, 60), st.integers(1, top), st.sampled_from([1, 999, 1000, 1001, top])))
    concurrent = draw(st.one_of(st.none(), st.integers(1, runs)))
    minutes = draw(st.one_of(st.none(), st.integers(1, 5_256_000)))
    metric, goal = draw(METRIC_NAMES), draw(GOALS)
    seed = draw(st.one_of(st.none(), st.integers(0, 2**32 - 1))) if sampling != "grid" else None
    stop = draw(policy())
    word = draw(st.sampled_from(SAMPLING_WORDS[sampling]))
    block: dict[str, Any]
    if not v2:
        sampler: dict[str, Any] = {"type": word}
        if seed is not None:
            sampler["seed"] = seed
        if sampling == "random" and draw(st.integers(0, 3)) == 0:
            sampler["rule"] = "random"
        sampler["parameter_space"] = space
        block = {"hyperparameter_sampling": sampler, "primary_metric_name": metric, "primary_metric_goal": goal}
        block["max_total_runs"] = runs
        if concurrent is not None or draw(st.booleans()):
            block["max_concurrent_runs"] = concurrent
        if minutes is not None:
            block["max_duration_minutes"] = minutes
        if stop is not None or draw(st.booleans()):
            block["policy"] = stop
    else:
        algorithm: Any = word if seed is None and draw(st.booleans()) else {"type": word}
        if seed is not None:
            algorithm["seed"] = seed
        block = {"sampling_algorithm": algorithm, "search_space": space}
        block["objective"] = {"primary_metric": metric, "goal": goal}
        limits: dict[str, Any] = {"max_total_trials": runs}
        if concurrent is not None:
            limits["max_concurrent_trials"] = concurrent
        if minutes is not None:
            limits["timeout"] = minutes * 60 - draw(st.integers(0, 59))
        block["limits"] = limits
        if stop is not None or draw(st.booleans()):
            block["early_termination"] = stop
    key = draw(st.sampled_from(["hyperdrive", "hyperdrive", "sweep"]))
    data = {**_job(draw), key: block}
    trials = min(grid, runs) if grid is not None else runs
    expect = {"sampling": sampling, "trials": trials, "metric": metric, "concurrent": concurrent, "args": args}
    return Case("sweep", data, expect)


# --------------------------------------------------------------------------------------------------
# Requeue keys, valid: every cause, max_restarts as a number and per cause, the checkpoint keys, a time limit.

CAUSES = ("timeout", "preemption", "node_failure")
SIGNALS = ("USR2", "USR1", "URG", "XCPU")
CHECKPOINT_DIRS = ["checkpoints", "ckpt", "state/ckpt", "état", "ckpt-1", "a b", "ckpt.d", "./ckpt", "deep/er/ckpt"]


@st.composite
def slurm_time(draw: st.DrawFn, seconds: int) -> str | int:
    """A Slurm time limit of at least `seconds`, in one of sbatch's forms."""
    minutes = max(1, -(-seconds // 60)) + draw(st.integers(0, 3000))
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    form = draw(st.sampled_from(["int", "M", "M:S", "H:M:S", "D-H:M:S", "D-H:M", "D-H"]))
    if form == "D-H":
        return f"{days}-{hours + (1 if mins else 0)}" if hours + (1 if mins else 0) < 24 else f"{days + 1}-0"
    return {
        "int": minutes,
        "M": str(minutes),
        "M:S": f"{minutes}:{draw(st.integers(0, 59)):02d}",
        "H:M:S": f"{days * 24 + hours}:{mins:02d}:{draw(st.integers(0, 59)):02d}",
        "D-H:M:S": f"{days}-{hours:02d}:{mins:02d}:00",
        "D-H:M": f"{days}-{hours}:{mins:02d}",
    }[form]


def _backend(draw: st.DrawFn, data: dict[str, Any], choices: list[str | None]) -> str | None:
    backend = draw(st.sampled_from(choices))
    if backend == "mpi":
        data.update(distributed_backend="mpi", node_count=draw(st.integers(1, 4)))
        data["process_count_per_node"] = draw(st.integers(1, 2))
        data["launcher"] = draw(st.sampled_from(["srun", "mpirun"]))
    elif backend == "ps":
        workers = draw(st.integers(1, 6))
        data.update(distributed_backend="ps", worker_count=workers, parameter_server_count=draw(st.integers(1, 2)))
        data["node_count"] = draw(st.integers(1, workers + 2))
    return backend


@st.composite
def requeue_case(draw: st.DrawFn) -> Case:
    data: dict[str, Any] = {"source_directory": "src", "entry_script": "train.py"}
    _backend(draw, data, [None, None, "mpi", "ps"])
    causes = draw(st.lists(st.sampled_from(CAUSES), unique=True, max_size=3))
    if causes or draw(st.booleans()):
        data["requeue_on"] = causes
    restarts = draw(st.sampled_from(["omit", "number", "mapping"]))
    if restarts == "number":
        data["max_restarts"] = draw(st.integers(0, 1000))
    elif restarts == "mapping":
        data["max_restarts"] = {c: draw(st.integers(0, 1000)) for c in causes}
    lead = draw(st.one_of(st.none(), st.integers(10, 3600)))
    if lead is not None:
        data["checkpoint_lead_seconds"] = lead
    sig = draw(st.one_of(st.none(), st.sampled_from(SIGNALS)))
    if sig is not None:
        data["checkpoint_signal"] = sig
    optional = {
        "checkpoint_dir": st.sampled_from(CHECKPOINT_DIRS),
        "checkpoint_every": st.one_of(st.just("epoch"), st.integers(1, 10**9)),
    }
    data.update(draw(st.fixed_dictionaries({}, optional=optional)))
    shortest = (lead or 120) + 1
    limit = draw(st.sampled_from(["none", "seconds", "time", "time", "unlimited"]))
    if limit == "seconds":
        data["max_run_duration_seconds"] = draw(st.integers(shortest, MAX_SECONDS))
    elif limit in ("time", "unlimited"):
        time_value = draw(slurm_time(shortest)) if limit == "time" else draw(st.sampled_from(["UNLIMITED", "INFINITE"]))
        data["compute_target"] = {"time": time_value}
        if draw(st.integers(0, 3)) == 0:
            data["compute_target"]["additional_parameters"] = {"mail_type": "END"}
    expect = {
        "causes": causes,
        "signal": sig or "USR2",
        "lead": lead or 120,
        "mpirun": data.get("launcher") == "mpirun",
    }
    return Case("requeue", data, expect)


REQUEUE_ROOTS = [
    ("requeue_on",),
    ("max_restarts",),
    ("checkpoint_dir",),
    ("checkpoint_lead_seconds",),
    ("checkpoint_signal",),
    ("checkpoint_every",),
    ("max_run_duration_seconds",),
    ("compute_target",),
    ("distributed_backend",),
]


# --------------------------------------------------------------------------------------------------
# Roles, valid: chief/ps/worker/evaluator components of a `ps` job, each with its options.

ROLE_ORDER = ("chief", "ps", "worker", "evaluator")
COMPONENT_PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "exclusive": st.sampled_from([None, True]),
        "contiguous": st.sampled_from([None, True]),
        "gres": st.sampled_from(["gpu:1", "tmp:10G"]),
        "nodelist": st.sampled_from(["n[1-2]", "n1"]),
        "sockets_per_node": st.sampled_from(["2", 1]),
    },
)
MEMS = st.one_of(st.sampled_from(["4000", "16G", "500M", "1T"]), st.integers(1, 10**6))


@st.composite
def role_options(draw: st.DrawFn, role: str, tasks: int, use_gpu: bool) -> dict[str, Any]:
    options: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "partition": st.sampled_from(["cpu", "gpu", "débug", "a100"]),
                "cpus_per_task": st.integers(1, 64),
                "constraint": st.sampled_from(["a100", "a&b", "[a|b]*2"]),
                "additional_parameters": COMPONENT_PARAMS.filter(lambda d: role != "ps" or "gres" not in d),
            },
        )
    )
    per_node = draw(st.sampled_from([d for d in range(1, tasks + 1) if tasks % d == 0]))
    layout = draw(st.sampled_from(["none", "per-node", "nodes", "both"]))
    if layout in ("per-node", "both") and (per_node > 1 or draw(st.booleans())):
        options["process_count_per_node"] = per_node
    else:
        per_node = 1
    if layout in ("nodes", "both"):
        options["node_count"] = tasks // per_node
    if use_gpu and role != "ps" and draw(st.booleans()):
        options["gpus_per_node"] = draw(st.integers(per_node, 8))
    return options


@st.composite
def roles_case(draw: st.DrawFn) -> Case:
    workers, servers = draw(st.integers(1, 8)), draw(st.integers(1, 3))
    evaluator = draw(st.booleans())
    use_gpu = draw(st.booleans())
    data: dict[str, Any] = {"source_directory": "src", "entry_script": "train.py", "distributed_backend": "ps"}
    data.update(worker_count=workers, parameter_server_count=servers)
    if evaluator:
        data["evaluator"] = True
    if use_gpu:
        data["use_gpu"] = True
    data.update(draw(st.fixed_dictionaries({}, optional={"ps_mode": st.sampled_from(["managed", "script"])})))
    tasks = {"chief": 1, "ps": servers, "worker": workers, "evaluator": 1}
    present = [r for r in ROLE_ORDER if r != "evaluator" or evaluator]
    listed = draw(st.lists(st.sampled_from(present), min_size=1, max_size=len(present), unique=True))
    if use_gpu and not any(r != "ps" for r in listed):
        listed.append("worker")
    roles = {r: draw(role_options(r, tasks[r], use_gpu)) for r in listed}
    if use_gpu and not any(o.get("gpus_per_node") for o in roles.values()):
        gpu_role = next(r for r in listed if r != "ps")
        roles[gpu_role]["gpus_per_node"] = roles[gpu_role].get("process_count_per_node", 1)
    target: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "partition": st.sampled_from(["cpu", "gpu"]),
                "time": st.sampled_from(["1:00:00", "30", "2-00:00:00", 90]),
                "account": st.sampled_from(["ml", "é"]),
                "qos": st.sampled_from(["normal"]),
                "additional_parameters": st.fixed_dictionaries(
                    {}, optional={"mail_type": st.just("END"), "comment": st.just("fuzz"), "begin": st.just("now")}
                ),
            },
        )
    )
    if draw(st.booleans()):
        target["mem"] = draw(MEMS)
    else:  # sbatch passes --mem on: once a component has its own, every later one needs one too
        seen = False
        for role in present:
            own = roles.get(role)
            if seen and (own is None or "mem" not in own):
                roles.setdefault(role, {})["mem"] = draw(MEMS)
            elif own is not None and draw(st.booleans()):
                own["mem"] = draw(MEMS)
            seen = seen or (own is not None and "mem" in own)
    if target:
        data["compute_target"] = target
    data["roles"] = {r: (roles[r] or None if draw(st.integers(0, 4)) == 0 else roles[r]) for r in roles}
    if draw(st.integers(0, 5)) == 0:
        data["requeue_on"] = ["preemption"]
    return Case("roles", data, {"components": len(present)})


ROLES_ROOTS = [
    ("roles",),
    ("distributed_backend",),
    ("worker_count",),
    ("parameter_server_count",),
    ("evaluator",),
    ("use_gpu",),
    ("compute_target",),
]


# --------------------------------------------------------------------------------------------------
# One case through validate, render --backend slurm and render --backend local, with the oracles.


def _load(config: Path, overrides: list[str]) -> Any:
    from hpc_tf.config.loading import load_config

    return load_config(config, overrides)


def run_case(
    ws: fuzz.Workspace,
    case: Case,
    runner: Callable[[list[str]], fuzz.Result] = run_inprocess,
    overrides: list[str] = (),  # type: ignore[assignment]
) -> None:
    STATS["configs_generated"][case.surface] += 1
    STATS["configs_mutated"][case.surface] += bool(case.mutations)
    config = ws.new_config(to_document(case.data))
    sets = [f"--set={o}" for o in overrides]
    results = [runner([*cmd[:1], str(config), *cmd[1:], *sets]) for cmd in COMMANDS]
    for r in results:
        check(r, config)
    valid, slurm, local = results
    shown = f"{config}:\n{config.read_text()[:3000]}\nmutations: {case.mutations}"
    refused = [m for m in case.mutations if m.refused and (m.op == "set" or _still_there(case.data, m))]
    named = []
    for mutation in refused:  # a value where a number belongs is refused, naming its key
        STATS["refusal_oracles_checked"] += 1
        misread(valid.code == 2, f"a value that is no number was accepted at {mutation.path}: {shown}")
        keys = [_dotted(mutation.path), _dotted(mutation.path[:-1]) if len(mutation.path) > 1 else "\0"]
        named.append(any(k in valid.stderr for k in keys))
    # every one named; a YAML value that cannot be read stops the reading, as a file's does: then the one it names
    if refused and valid.stderr.count("\n  - ") <= 1:
        others = any(_dotted(m.path) in valid.stderr for m in case.mutations)  # the value that stopped the read
        keys = case.data if isinstance(case.data, dict) else {}
        others = others or any(f"yaml: {k}: " in valid.stderr for k in keys)  # or a junk key's unreadable value
        misread(any(named) or others, f"none of {[m.path for m in refused]} named:\n{valid.stderr[:2000]}\n{shown}")
    else:
        misread(all(named), f"not all of {[m.path for m in refused]} named:\n{valid.stderr[:2000]}\n{shown}")
    if not case.mutations:  # generated valid: accepted
        misread(valid.code == 0, f"a valid {case.surface} config was refused:\n{valid.stderr[:3000]}\n{shown}")
    if valid.code != 0:
        misread([slurm.code, local.code] == [2, 2], f"validate refuses, render does not: {shown}")
        return
    STATS["accepted"][case.surface] += 1
    assert ": valid (" in valid.stdout, valid.stdout
    misread(slurm.code == 0, f"validate accepts what render --backend slurm refuses:\n{slurm.stderr[:3000]}\n{shown}")
    assert slurm.stdout.startswith("#!/bin/bash\n") and "\nexec " in slurm.stdout, slurm.stdout[:2000]
    sweep = re.search(r", an? (\w+) sweep of (\d+) trials on ", valid.stdout)
    roles = isinstance(case.data, dict) and "roles" in case.data
    if sweep or roles:
        why = SWEEP_LOCAL_REFUSAL if sweep else NEEDS_SLURM
        misread(local.code == 2 and why in local.stderr, f"render --backend local: {local.stderr[:2000]}\n{shown}")
    else:
        misread(local.code == 0, f"validate accepts what render --backend local refuses:\n{local.stderr}\n{shown}")
    if not case.mutations:
        STATS["render_oracles_checked"] += 1
        RENDER_ORACLES[case.surface.split()[0]](case, valid.stdout, slurm.stdout, shown)
    if overrides:
        shown += f"\n--set: {overrides}"
    else:
        _check_lead(case.data, shown)
    if runner is run_inprocess:  # explain answers what validate accepts; trials drawn lie within their expressions
        explained = runner(["explain", str(config), *sets])
        check(explained, config)
        misread(explained.code == 0, f"validate accepts what explain refuses:\n{explained.stderr[:2000]}\n{shown}")
        if sweep:
            _check_trials(ws, config, shown, overrides)


def _sweep_oracle(case: Case, validated: str, script: str, shown: str) -> None:
    want = case.expect
    said = f"a {want['sampling']} sweep of {want['trials']} trials on {want['metric']!r}"
    misread(said in validated, f"validate says {validated!r}, not {said!r}: {shown}")
    count = min(want["trials"], 1000)
    text = f"0-{count - 1}" if count > 1 else "0"
    if want["concurrent"] is not None and want["concurrent"] < count:
        text += f"%{want['concurrent']}"
    misread(f"\n#SBATCH --array={text}\n" in script, f"no --array={text} in the script: {shown}\n{script[:1500]}")


def _requeue_oracle(case: Case, validated: str, script: str, shown: str) -> None:
    want = case.expect
    if not want["causes"]:
        misread("\n#SBATCH --no-requeue\n" in script, f"no --no-requeue: {shown}\n{script[:1500]}")
        return
    misread("\n#SBATCH --requeue\n" in script, f"no --requeue: {shown}\n{script[:1500]}")
    if "timeout" in want["causes"] or "preemption" in want["causes"]:
        line = f"\n#SBATCH --signal={'B:' if want['mpirun'] else ''}{want['signal']}@{want['lead']}\n"
        misread(line in script, f"no {line.strip()} in the script: {shown}\n{script[:1500]}")
    else:
        misread("--signal" not in script, f"a warning signal without timeout or preemption: {shown}")


def _roles_oracle(case: Case, validated: str, script: str, shown: str) -> None:
    separators = script.count("\n#SBATCH hetjob\n")
    want = case.expect["components"] - 1
    misread(separators == want, f"{separators} hetjob separators, not {want}: {shown}\n{script[:3000]}")


RENDER_ORACLES = {"sweep": _sweep_oracle, "requeue": _requeue_oracle, "roles": _roles_oracle}


def _time_seconds(value: Any) -> int | None:
    """A Slurm time limit in seconds, read independently of hpc_tf (None: no limit, or not one of sbatch's forms)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value * 60
    if not isinstance(value, str) or type(value) is not str:
        return None
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", value.strip())
    if not m:
        return None
    days, first, second, third = (int(g) if g else None for g in m.groups())
    if days is None:  # M, M:S, H:M:S
        if third is not None:
            return first * 3600 + (second or 0) * 60 + third  # type: ignore[operator]
        return first * 60 + (second or 0)  # type: ignore[operator]
    return days * 86400 + first * 3600 + (second or 0) * 60 + (third or 0)  # type: ignore[operator]


def _check_lead(data: Any, shown: str) -> None:
    """An accepted config that asks for Slurm's warning has a lead shorter than its time limit (read from the
    final data, mutations included, when the keys hold plain values)."""
    if not isinstance(data, dict) or not isinstance(data.get("requeue_on"), list):
        return
    if not {"timeout", "preemption"} & {c for c in data["requeue_on"] if type(c) is str}:
        return
    lead = data.get("checkpoint_lead_seconds", 120)
    limit = data.get("max_run_duration_seconds")
    target = data.get("compute_target")
    if limit is None and isinstance(target, dict):
        limit = _time_seconds(target.get("time"))
    if type(lead) is not int or type(limit) is not int:
        return
    STATS["render_oracles_checked"] += 1
    misread(lead < limit, f"accepted a warning {lead} s before a limit of {limit} s: {shown}")


def _check_trials(ws: fuzz.Workspace, config: Path, shown: str, overrides: list[str]) -> None:
    """Trials of an accepted sweep: random and grid drawn as submit draws them, bayesian asked of Optuna as an
    array task asks; as many as it says, each value within its expression."""
    from hpc_tf.sweeps.core.sampling import draw_trials

    _, sweep, _ = _load(config, overrides)
    if sweep is None or sweep.trial_count > 5000:
        return
    if sweep.sampling == "bayesian":
        _check_asks(ws, sweep, shown)
        return
    trials = draw_trials(sweep, sweep.seed or 0)
    STATS["trials_drawn"] += len(trials)
    misread(len(trials) == sweep.trial_count, f"{len(trials)} trials drawn of {sweep.trial_count}: {shown}")
    if sweep.sampling == "grid":
        points = {tuple(map(repr, t.values())) for t in trials}
        misread(len(points) == len(trials), f"a grid point drawn twice: {shown}")
    for trial in trials:
        for flag, value in trial.items():
            why = _outside(sweep.parameter_space[flag], value)
            misread(not why, f"{flag} = {value!r} ({sweep.parameter_space[flag].text()}): {why}: {shown}")


def _check_asks(ws: fuzz.Workspace, sweep: Any, shown: str) -> None:
    import warnings

    from hpc_tf.sweeps.bayesian import ask

    folder = ws.root / "optuna" / str(next(ws.counter))
    folder.mkdir(parents=True)
    try:
        with warnings.catch_warnings():  # Optuna's "range is not divisible by step" (hpc_tf's own bounds)
            warnings.simplefilter("ignore")
            for index in range(min(2, sweep.trial_count)):
                _, params = ask(
                    folder, "s", sweep.parameter_space, sweep.primary_metric_goal, 1, index, lambda i: False
                )
                STATS["trials_drawn"] += 1
                for flag, value in params.items():
                    why = _outside(sweep.parameter_space[flag], value)
                    misread(not why, f"{flag} = {value!r} ({sweep.parameter_space[flag].text()}): {why}: {shown}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _outside(expr: Any, value: Any) -> str:
    """What is wrong with one drawn value of `expr` ("" when nothing)."""
    if expr.kind == "choice":
        return "" if any(value == v and type(value) is type(v) for v in expr.values) else "not one of the choices"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "not a finite number"
    if expr.kind == "randint":
        return "" if isinstance(value, int) and 0 <= value < expr.upper else "outside 0 … upper-1"
    if expr.kind in ("loguniform", "lognormal") and value <= 0:  # (a quantized one may round to 0)
        return "a log-space draw that is not > 0 (exp underflowed to 0)"
    q = expr.q or 0
    slack = q + 1e-9 * max(1.0, abs(value))
    if expr.kind in ("uniform", "quniform") and not expr.low - slack <= value <= expr.high + slack:
        return "outside min_value … max_value"
    if expr.kind in ("loguniform", "qloguniform"):
        low, high = math.exp(expr.low), math.exp(expr.high)
        if not low - slack - 1e-12 * low <= value <= high + slack + 1e-12 * high:
            return "outside exp(min_value) … exp(max_value)"
    if expr.kind in ("normal", "qnormal") and abs(value - expr.mu) > 8.58 * expr.sigma + slack:
        return "further than 8.58 sigma from mu"
    if q and abs(value / q - round(value / q)) > 1e-6 * max(1.0, abs(value / q)):
        return "not a multiple of q"
    return ""


# --------------------------------------------------------------------------------------------------
# Properties, in-process.


@examples("sweep")
@given(case=sweep_case().flatmap(lambda c: mutated(c, [(k,) for k in c.data if k in ("hyperdrive", "sweep")])))
def test_fuzz_sweep_configs(ws: fuzz.Workspace, case: Case) -> None:
    """`hyperdrive:`/`sweep:` blocks: every expression kind, sampling and policy, v1 and v2 names, mutated."""
    run_case(ws, case)


@examples("requeue")
@given(case=requeue_case().flatmap(lambda c: mutated(c, REQUEUE_ROOTS)))
def test_fuzz_requeue_configs(ws: fuzz.Workspace, case: Case) -> None:
    """requeue_on, max_restarts (number, per cause), checkpoint_* with max_run_duration_seconds or a Slurm time."""
    run_case(ws, case)


@examples("roles")
@given(case=roles_case().flatmap(lambda c: mutated(c, ROLES_ROOTS)))
def test_fuzz_roles_configs(ws: fuzz.Workspace, case: Case) -> None:
    """roles of a ps job (chief, ps, worker, evaluator), each with its options and additional_parameters."""
    run_case(ws, case)


def test_in_process_counts_meet_the_brief() -> None:
    """≥ 1,000 configs in-process across the three surfaces (counted when the properties ran in this process)."""
    ran = {"sweep", "requeue", "roles"} & set(STATS["configs_generated"])
    if ran != {"sweep", "requeue", "roles"} or SCALE < 1:
        pytest.skip(f"the properties ran elsewhere (xdist), not at all or scaled down: {sorted(ran)}, {SCALE}")
    counts = STATS["configs_generated"]
    assert counts["sweep"] >= 400 and counts["requeue"] >= 300 and counts["roles"] >= 300, dict(counts)
    assert sum(counts[k] for k in ("sweep", "requeue", "roles")) >= 1000, dict(counts)
    assert all(STATS["accepted"][k] > 0.2 * counts[k] for k in ("sweep", "requeue", "roles")), dict(STATS["accepted"])


# `--set KEY=VALUE` on the new keys: the same values, read by the same YAML rules.

SET_BASES: dict[str, dict[str, Any]] = {
    "sweep": {
        "source_directory": "src",
        "entry_script": "train.py",
        "hyperdrive": {
            "hyperparameter_sampling": {"type": "random", "seed": 1, "parameter_space": {"--lr": "uniform(0, 1)"}},
            "primary_metric_name": "val_accuracy",
            "primary_metric_goal": "maximize",
            "max_total_runs": 8,
            "max_concurrent_runs": 2,
            "policy": {"type": "bandit", "slack_factor": 0.1, "evaluation_interval": 1},
        },
    },
    "requeue": {
        "source_directory": "src",
        "entry_script": "train.py",
        "requeue_on": ["timeout", "preemption"],
        "max_restarts": {"timeout": 3, "preemption": 2},
        "checkpoint_lead_seconds": 60,
        "max_run_duration_seconds": 600,
    },
    "roles": {
        "source_directory": "src",
        "entry_script": "train.py",
        "distributed_backend": "ps",
        "worker_count": 2,
        "compute_target": {"mem": "4G"},
        "roles": {"chief": {"partition": "cpu"}, "worker": {"partition": "gpu", "node_count": 2}},
    },
}
SET_KEYS = {
    "sweep": [
        *(f"hyperdrive.{k}" for k in ("max_total_runs", "max_concurrent_runs", "max_duration_minutes")),
        *(f"hyperdrive.{k}" for k in ("primary_metric_goal", "primary_metric_name", "policy")),
        *(f"hyperdrive.policy.{k}" for k in ("slack_factor", "slack_amount", "evaluation_interval", "type")),
        *(f"hyperdrive.hyperparameter_sampling.{k}" for k in ("type", "seed", "rule", "parameter_space")),
        "hyperdrive.hyperparameter_sampling.parameter_space.--lr",
        "hyperdrive.hyperparameter_sampling.parameter_space.--new",
        "hyperdrive.limits.timeout",
        "hyperdrive.objective.goal",
        "sweep.max_total_runs",
        "hyperdrive",
    ],
    "requeue": [
        "requeue_on",
        "max_restarts",
        "max_restarts.timeout",
        "max_restarts.node_failure",
        "checkpoint_lead_seconds",
        "checkpoint_signal",
        "checkpoint_dir",
        "checkpoint_every",
        "max_run_duration_seconds",
        "compute_target.time",
        "compute_target.additional_parameters.sig",
        "compute_target.additional_parameters.requeue",
    ],
    "roles": [
        "roles",
        "roles.worker",
        "roles.worker.node_count",
        "roles.worker.process_count_per_node",
        "roles.worker.gpus_per_node",
        "roles.ps.gpus_per_node",
        "roles.chief.partition",
        "roles.chief.time",
        "roles.evaluator.mem",
        "roles.worker.additional_parameters.exclusive",
        "roles.worker.additional_parameters.accou",
        "worker_count",
        "parameter_server_count",
        "evaluator",
    ],
}
PLAUSIBLE = ["1", "2", "3", "8", "60", "600", "3599", "0o17", "null", "USR1", "URG", "XCPU", "ckpt/b", "1:00:00"]
PLAUSIBLE += ["[timeout]", "[preemption, node_failure]", "{timeout: 2, preemption: 1}", "{}", "gpu", "minimize", "0.5"]
PLAUSIBLE += ["{partition: cpu}", "{node_count: 1}", "'choice(1, 2)'", "{type: median_stopping}", "none", "true"]
SET_VALUES = st.one_of(
    st.sampled_from(PLAUSIBLE),
    st.sampled_from(PLAUSIBLE),
    st.sampled_from(LOOKALIKES),
    st.sampled_from(BOUNDARY).map(lambda v: fuzz.yaml_flow(v)),
    st.sampled_from(EXPR_TEXTS[:40]).map(lambda t: json.dumps(t)),
    st.sampled_from(TYPE_WORDS),
    TEXTS.filter(lambda t: len(t) < 5000),
)


@st.composite
def set_case(draw: st.DrawFn) -> tuple[Case, list[str]]:
    surface = draw(st.sampled_from(sorted(SET_BASES)))
    items, done = [], []
    for _ in range(draw(st.integers(1, 2))):
        key = draw(st.sampled_from(SET_KEYS[surface]))
        path = tuple(key.split("."))
        numeric = path[-1] in NUMERIC_KEYS or (len(path) >= 2 and path[-2] == "max_restarts")
        if numeric and draw(st.integers(0, 2)) == 0:
            value, refused = draw(st.sampled_from(REFUSED_RAW)), True
        else:
            value, refused = draw(SET_VALUES), False
        items.append(f"{key}={value}")
        done.append(Mutation("set", path, value, refused))
    if len({m.path for m in done}) < len(done):  # the same key twice: the last wins, the oracle is about each
        done = [Mutation(m.op, m.path, m.value, False) for m in done]
    return Case(f"{surface} --set", copy.deepcopy(SET_BASES[surface]), {}, done), items


@examples("--set")
@given(case=set_case())
def test_fuzz_set_overrides_of_the_new_keys(ws: fuzz.Workspace, case: tuple[Case, list[str]]) -> None:
    """`--set` of sweep, requeue and roles keys on a valid config of each."""
    assume_argv = [o for o in case[1] if not fuzz._argv_ok([o])]
    if assume_argv:  # a lone surrogate cannot be an argv byte (in-process it could; keep it like the shell's)
        return
    run_case(ws, case[0], overrides=case[1])


# --------------------------------------------------------------------------------------------------
# The real CLI, a sample: a subprocess each, RLIMIT_AS 2 GiB, a timeout.


def _argv_ok(config: Path) -> bool:
    return fuzz._argv_ok([str(config)])


@examples("real CLI")
@given(
    case=st.one_of(
        sweep_case().flatmap(lambda c: mutated(c, [(k,) for k in c.data if k in ("hyperdrive", "sweep")])),
        requeue_case().flatmap(lambda c: mutated(c, REQUEUE_ROOTS)),
        roles_case().flatmap(lambda c: mutated(c, ROLES_ROOTS)),
    )
)
def test_fuzz_surfaces_real_cli(ws: fuzz.Workspace, case: Case) -> None:
    case = Case(f"{case.surface} (real CLI)", case.data, case.expect, case.mutations)
    run_case(ws, case, functools.partial(run_subprocess, ws))


# --------------------------------------------------------------------------------------------------
# Damaged sweep directories: made by submit_sweep and open_trial, damaged, followed in-process.

SWEEP_JOB = "4242"
NOW = "2026-11-28T12:00:00+00:00"


def _make_sweep(ws: fuzz.Workspace, name: str, block: dict[str, Any], trials: list[tuple[str, list[Any]]]) -> Path:
    """A runs directory with one real sweep (its arrays "queued" as job 4242) and trials 0..len(trials)-1 opened
    by the in-job code: each (final state or RUNNING, the primary metric values it logged)."""
    from hpc_tf.backends import slurm, slurm_submit
    from hpc_tf.config.loading import validate_config
    from hpc_tf.core import transitions
    from hpc_tf.settings import Settings
    from hpc_tf.sweeps.early_stop import observe, trial_policy
    from hpc_tf.sweeps.submit import prepare_sweep, submit_sweep
    from hpc_tf.sweeps.trial import open_trial

    runs = ws.root / "templates" / name
    data = {
        "experiment": "fz",
        "source_directory": str(ws.root / "src"),
        "entry_script": "train.py",
        "hyperdrive": block,
    }
    spec, sweep, key = validate_config(data, ws.root, f"{name}.yaml")
    assert sweep is not None
    settings = Settings.from_env(runs_dir=runs)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(slurm.SlurmBackend, "start_array_limits", lambda self: lambda: (None, None, "fuzz"))
        mp.setattr(slurm_submit, "sbatch", lambda *args: SWEEP_JOB)
        sweep_dir = submit_sweep(prepare_sweep(spec, sweep, settings, "slurm", probe=False, key=key), settings)
    env = {"SLURM_ARRAY_JOB_ID": SWEEP_JOB}
    for index, (state, values) in enumerate(trials):
        run = open_trial(sweep_dir.path, 0, {**env, "SLURM_ARRAY_TASK_ID": str(index)})
        assert run is not None
        run.transition(lambda s: transitions.started(s, NOW, ["n1"]))
        policy = trial_policy(sweep_dir.path)
        for value in values:
            observe(run, policy, value)
        if state != "RUNNING" and not run.read_status().final:
            run.transition(
                lambda s, state=state: transitions.finalised(s, state, 0 if state == "COMPLETED" else 1, NOW)
            )
    return sweep_dir.path


@pytest.fixture(scope="module")
def sweep_templates(ws: fuzz.Workspace) -> dict[str, Path]:
    space = {"--lr": "loguniform(-6, -1)", "--bs": {"type": "choice", "values": [16, 32, 64]}}
    base = {"primary_metric_name": "val_accuracy", "primary_metric_goal": "maximize", "max_concurrent_runs": 2}
    random_block = {
        **base,
        "hyperparameter_sampling": {"type": "random", "seed": 7, "parameter_space": space},
        "max_total_runs": 5,
        "policy": {"type": "bandit", "slack_factor": 0.1},
    }
    bayesian_block = {
        **base,
        "hyperparameter_sampling": {"type": "bayesian", "seed": 3, "parameter_space": space},
        "max_total_runs": 3,
        "primary_metric_goal": "minimize",
    }
    grid_block = {
        **base,
        "hyperparameter_sampling": {"type": "grid", "parameter_space": {"--bs": "choice(1, 2, 3, 4)"}},
        "max_total_runs": 4,
        "policy": {"type": "median_stopping", "delay_evaluation": 1},
    }
    return {
        "random": _make_sweep(
            ws,
            "random",
            random_block,
            [("COMPLETED", [0.5, 0.6]), ("FAILED", [0.9]), ("RUNNING", [0.1, 0.2, 0.05]), ("CANCELLED", [])],
        ),
        "bayesian": _make_sweep(ws, "bayesian", bayesian_block, [("COMPLETED", [0.3]), ("RUNNING", [0.7])]),
        "grid": _make_sweep(
            ws,
            "grid",
            grid_block,
            [("COMPLETED", [1, 2]), ("COMPLETED", [3, 1]), ("COMPLETED", [2, 2]), ("COMPLETED", [0])],
        ),
    }


JSON_JUNK = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.sampled_from([0, -1, 1, 2**31, 2**63, 10**30, -(10**30), 10**400, 1e308, -0.0, 0.5]),
        st.integers(),
        st.floats(),  # NaN and ±inf are written as JSON's NaN, Infinity tokens (json.dumps allows them)
        st.sampled_from(["", "x" * 5000, "COMPLETED", "RUNNING", "PENDING", "DAMAGED", "2026-11-28T12:00:00", "now"]),
        st.sampled_from(["2999-01-01T00:00:00+00:00", "2000-01-01T00:00:00+00:00", "0001-01-01T00:00:00+23:59"]),
        st.sampled_from(["4242", "4242_1", "-1", "4242,4243", "", "٤٢", "\ud800", "../x", "slurm", "local"]),
        st.text(max_size=10),
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=8,
) | st.builds(lambda n: "[" * n + "]" * n, st.sampled_from([40, 1000, 100_000]))
FILES = {  # what can be damaged → its path under (runs dir, sweep dir)
    "sweep.json": lambda sweep: sweep / "sweep.json",
    "trials.jsonl": lambda sweep: sweep / "trials.jsonl",
    "sweep job.json": lambda sweep: sweep / "job.json",
    "optuna.journal": lambda sweep: sweep / "optuna.journal",
    "sweep lock": lambda sweep: sweep / ".sweep.lock",
    **{
        f"trial {i} {name}": functools.partial(
            lambda sweep, i, rel: sweep.parent / f"{sweep.name}_{i}" / rel, i=i, rel=rel
        )
        for i in range(3)
        for name, rel in (
            ("status.json", "status.json"),
            ("job.json", "job.json"),
            ("primary.jsonl", "metrics/primary.jsonl"),
            ("policy.jsonl", "policy.jsonl"),
            ("status lock", ".status.lock"),
        )
    },
}
ODD_NAMES = ["²", "01", "-1", "1 ", "", "99", "999999999", "9999999999", "x", "0_0", "٣", "1\n", "\udcff"]
ODD_IDS = ["20261128-120000-000abc[1]", "a*b?", "sp ace", "é", "-dash", "x\udcff", "[", "a_1"]
SACCT = st.lists(
    st.one_of(
        st.builds(
            lambda i, state, code: f"{SWEEP_JOB}_{i}|{state}|{code}|None",
            st.integers(0, 6),
            st.sampled_from(
                ["COMPLETED", "RUNNING", "PENDING", "FAILED", "CANCELLED by 0", "TIMEOUT", "OUT_OF_MEMORY"]
            ),
            st.sampled_from(["0:0", "1:0", "0:15", "x", ""]),
        ),
        st.sampled_from([f"{SWEEP_JOB}_[3-4%2]|PENDING|0:0|None", f"{SWEEP_JOB}|RUNNING|0:0|None", "", "||||", "x"]),
        st.text(max_size=30),
    ),
    max_size=6,
)


@st.composite
def file_damage(draw: st.DrawFn, data: bytes) -> bytes | str:
    """New bytes for a record file, or a kind of file ("dir", "fifo", "dev-zero", "dangling", "loop", "gone")."""
    how = draw(st.sampled_from(["truncate", "garble", "field", "field", "line", "whole", "kind"]))
    if how == "truncate":
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    if how == "garble":
        out = bytearray(data or b"{}")
        for _ in range(draw(st.integers(1, 8))):
            out[draw(st.integers(0, len(out) - 1))] = draw(st.integers(0, 255))
        return bytes(out)
    if how in ("field", "line"):
        lines = data.decode("utf-8", "replace").splitlines() or ["{}"]
        n = draw(st.integers(0, len(lines) - 1))
        if how == "line":
            lines[n] = draw(st.one_of(JSON_JUNK.map(lambda v: json.dumps(v)), st.text(max_size=40)))
            return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
        try:
            record = json.loads(lines[n])
        except (ValueError, RecursionError):  # not JSON, or nested deeper than the json module reads
            return data
        paths = [p for p in _paths(record) if p]
        if not paths:
            return data
        path = paths[draw(st.integers(0, len(paths) - 1))]
        parent = _parent(record, path)
        if draw(st.integers(0, 3)) == 0:
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON_JUNK)
        lines[n] = json.dumps(record)
        return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
    if how == "whole":
        return draw(
            st.one_of(
                st.sampled_from([b"", b"{}", b"[]", b"null", b"\xff\xfe\x00", b"\x00" * 100, b"{" * 50_000]),
                st.sampled_from([b"[" * 100_000 + b"]" * 100_000, b'{"a": ' * 5000 + b"1" + b"}" * 5000]),
                JSON_JUNK.map(lambda v: json.dumps(v).encode("utf-8", "surrogatepass")),
                st.binary(max_size=200),
            )
        )
    return draw(st.sampled_from(["dir", "fifo", "dev-zero", "dangling", "loop", "gone"]))


def _apply(path: Path, damage: bytes | str) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(damage, bytes):
        path.write_bytes(damage)
    elif damage == "dir":
        path.mkdir()
    elif damage == "fifo":
        os.mkfifo(path)
    elif damage == "dev-zero":
        path.symlink_to("/dev/zero")
    elif damage == "dangling":
        path.symlink_to(path.parent / "nothing-here")
    elif damage == "loop":
        path.symlink_to(path.name)


@st.composite
def sweep_damage(draw: st.DrawFn) -> tuple[str, list[tuple[str, Any]], list[str]]:
    """(template, damage steps, sacct answer lines); a step is (what, how)."""
    template = draw(st.sampled_from(["random", "random", "bayesian", "grid"]))
    steps: list[tuple[str, Any]] = []
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from([*FILES, "sweep.json", "sweep.json", "odd folder", "trial folder", "sweep id"]))
        if what == "odd folder":
            steps.append((what, (draw(st.sampled_from(ODD_NAMES)), draw(st.sampled_from(["dir", "file", "link"])))))
        elif what == "trial folder":
            steps.append((what, (draw(st.integers(0, 3)), draw(st.sampled_from(["file", "gone", "loop", "root"])))))
        elif what == "sweep id":
            steps.append((what, draw(st.sampled_from(ODD_IDS))))
        else:
            steps.append((what, None))  # drawn from the file's bytes once the sweep is copied
    return template, steps, draw(SACCT)


def _damage(runs: Path, sweep: Path, steps: list[tuple[str, Any]], data: st.DataObject | None) -> Path:
    """Apply the steps; the sweep's path afterwards (a "sweep id" step renames the sweep and its trials)."""
    for what, how in steps:
        STATS["damage_kinds"][what] += 1
        if what == "odd folder":
            name, kind = how
            target = Path(os.fsdecode(os.fsencode(str(sweep.parent / f"{sweep.name}_{name}"))))
            with contextlib.suppress(OSError):
                {"dir": target.mkdir, "file": target.touch, "link": lambda t=target: t.symlink_to("/")}[kind]()
        elif what == "trial folder":
            index, kind = how
            target = sweep.parent / f"{sweep.name}_{index}"
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            if kind == "file":
                target.write_text("not a run directory\n")
            elif kind == "loop":
                target.symlink_to(target.name)
            elif kind == "root":
                target.symlink_to("/")
        elif what == "sweep id":
            new = sweep.parent / how
            for trial in sweep.parent.glob(f"{glob.escape(sweep.name)}_*"):
                trial.rename(sweep.parent / f"{how}{trial.name[len(sweep.name) :]}")
            sweep = sweep.rename(new)
        else:
            path = FILES[what](sweep)
            content = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
            if how is None:  # generated from what the file holds
                assert data is not None
                how = data.draw(file_damage(content))
            _apply(path, how(content) if callable(how) else how)
    return sweep


class FakeClock:
    """`time` as hpc_tf.sweeps.run sees it: `sleep` advances `monotonic` at once, so `wait --timeout 1` polls
    as it would for a second and more, without waiting."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


SWEEP_COMMANDS = (("status", "--json"), ("status",), ("best",), ("wait", "--timeout", "1"), ("recheck",))


def _sweep_calls(runs: Path, sweep: Path, runner: Callable[[list[str]], fuzz.Result], json_too: bool) -> None:
    for command in SWEEP_COMMANDS if json_too else SWEEP_COMMANDS[1:3]:
        argv = ["sweep", command[0], str(sweep), *command[1:], "--runs-dir", str(runs)]
        check(runner(argv), codes=(0, 1, 2))


@contextlib.contextmanager
def slurm_answer(ws: fuzz.Workspace, lines: list[str]) -> Iterator[None]:
    answer = ws.root / "sacct-answer.txt"
    answer.write_text("".join(f"{line}\n" for line in lines), errors="surrogateescape")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FUZZ_SLURM_ANSWER", str(answer))
        yield


def _copy(template: Path, into: Path) -> tuple[Path, Path]:
    runs = into / "runs"
    shutil.copytree(template.parent.parent, runs, symlinks=True)
    return runs, runs / template.parent.name / template.name


@examples("damaged sweep dirs")
@given(damage=sweep_damage(), data=st.data())
def test_fuzz_damaged_sweep_directories(
    ws: fuzz.Workspace,
    sweep_templates: dict[str, Path],
    damage: tuple[str, list[tuple[str, Any]], list[str]],
    data: st.DataObject,
) -> None:
    """`sweep status [--json]|best|wait --timeout 1|recheck` of a damaged sweep: 0, 1 or 2, no traceback, no hang,
    bounded memory, a message on stderr for anything but 0."""
    from hpc_tf.sweeps import run as sweep_run

    template, steps, answer = damage
    case = ws.root / "damage" / str(next(ws.counter))
    try:
        runs, sweep = _copy(sweep_templates[template], case)
        sweep = _damage(runs, sweep, steps, data)
        with slurm_answer(ws, answer), pytest.MonkeyPatch.context() as mp:
            mp.setattr(sweep_run, "time", FakeClock())
            _sweep_calls(runs, sweep, run_inprocess, json_too=True)
    finally:
        shutil.rmtree(case, ignore_errors=True)


@examples("damage CLI")
@given(damage=sweep_damage(), data=st.data())
def test_fuzz_damaged_sweep_directories_real_cli(
    ws: fuzz.Workspace,
    sweep_templates: dict[str, Path],
    damage: tuple[str, list[tuple[str, Any]], list[str]],
    data: st.DataObject,
) -> None:
    """A sample of the same through the real CLI, under RLIMIT_AS 2 GiB (status and best: no real waiting)."""
    template, steps, answer = damage
    case = ws.root / "damage-cli" / str(next(ws.counter))
    try:
        runs, sweep = _copy(sweep_templates[template], case)
        sweep = _damage(runs, sweep, steps, data)
        with slurm_answer(ws, answer):
            _sweep_calls(runs, sweep, functools.partial(run_subprocess, ws), json_too=False)
    finally:
        shutil.rmtree(case, ignore_errors=True)


def test_healthy_sweep_templates_answer(ws: fuzz.Workspace, sweep_templates: dict[str, Path]) -> None:
    """The templates themselves: status 0 with every trial, best 0 (the fuzzing above starts from these)."""
    for name, sweep in sweep_templates.items():
        result = run_inprocess(["sweep", "status", str(sweep), "--json"])
        check(result, codes=(0,))
        status = json.loads(result.stdout)
        assert len(status["trials"]) == {"random": 5, "bayesian": 3, "grid": 4}[name], status
        assert not status["damaged"] and not any(t["damaged"] for t in status["trials"]), status
        check(run_inprocess(["sweep", "best", str(sweep)]), codes=(0,))


# --------------------------------------------------------------------------------------------------
# Regressions: inputs the fuzzing above found escaping as tracebacks, hangs or misreads (see each id).


def _first_line(line: bytes) -> Callable[[bytes], bytes]:
    return lambda content: line + content


# id → (template, damage steps (what, new bytes | file kind | bytes → bytes), command, exit status, words said)
DAMAGE_REGRESSIONS: dict[str, tuple[str, list[tuple[str, Any]], tuple[str, ...], int, str]] = {
    # early_stop.recheck read policy.jsonl with Path.read_text(): /dev/zero filled memory (MemoryError under the
    # in-process RLIMIT_AS), a FIFO blocked for ever, a directory was an IsADirectoryError traceback.
    "recheck-policy-jsonl-is-dev-zero": ("random", [("trial 0 policy.jsonl", "dev-zero")], ("recheck",), 1, "device"),
    "recheck-policy-jsonl-is-a-fifo": ("random", [("trial 0 policy.jsonl", "fifo")], ("recheck",), 1, "a FIFO"),
    "recheck-policy-jsonl-is-a-directory": ("random", [("trial 0 policy.jsonl", "dir")], ("recheck",), 1, "directory"),
    # ... and read_history (also what every trial's policy reads of its siblings) read primary.jsonl the same way.
    "recheck-primary-jsonl-is-a-fifo": ("random", [("trial 2 primary.jsonl", "fifo")], ("recheck",), 1, "differ"),
    "recheck-primary-jsonl-is-dev-zero": ("random", [("trial 2 primary.jsonl", "dev-zero")], ("recheck",), 1, ""),
    # `sweep best` printed a trial's run_dir of undecodable bytes (os.fsdecode's \udcff) to a UTF-8 stdout:
    # UnicodeEncodeError. It is printed as those bytes now, as ls prints it.
    "best-run-dir-of-undecodable-bytes": ("random", [("sweep id", "x\udcff")], ("best",), 0, "run_dir"),
    # sweep status of a bayesian sweep replays optuna.journal: a line that is JSON but not an Optuna record was a
    # TypeError traceback (in Optuna's apply_logs), a line that is not JSON a JSONDecodeError; a FIFO would block
    # Optuna's open for appending, /dev/zero its read. Each is named as damaged; the trials are shown.
    "status-optuna-journal-json-string-line": (
        "bayesian",
        [("optuna.journal", _first_line(b'"[[]]"\n'))],
        ("status",),
        0,
        "is damaged (TypeError",
    ),
    "status-optuna-journal-line-not-json": (
        "bayesian",
        [("optuna.journal", _first_line(b"{not json\n"))],
        ("status",),
        0,
        "is damaged",
    ),
    "status-optuna-journal-unknown-op-fields": (
        "bayesian",
        [("optuna.journal", _first_line(b'{"op_code": 5}\n'))],
        ("best",),
        0,
        "is damaged",
    ),
    "status-optuna-journal-is-a-fifo": ("bayesian", [("optuna.journal", "fifo")], ("status",), 0, "(a FIFO)"),
    "status-optuna-journal-is-dev-zero": ("bayesian", [("optuna.journal", "dev-zero")], ("status",), 0, "(a device)"),
    "status-optuna-journal-is-a-directory": ("bayesian", [("optuna.journal", "dir")], ("status",), 0, "directory"),
}


@pytest.mark.parametrize("name", list(DAMAGE_REGRESSIONS))
def test_damage_regressions(ws: fuzz.Workspace, sweep_templates: dict[str, Path], name: str) -> None:
    """Each finding of test_fuzz_damaged_sweep_directories, minimal: the exit status and what it says, in-process
    (a user's UTF-8 stdout, RLIMIT_AS headroom, a timeout), the other trials still shown."""
    template, steps, command, code, words = DAMAGE_REGRESSIONS[name]
    runs, sweep = _copy(sweep_templates[template], ws.root / "regression" / name)
    sweep = _damage(runs, sweep, steps, None)
    result = run_inprocess(["sweep", command[0], str(sweep), *command[1:], "--runs-dir", str(runs)], timeout=10)
    check(result, codes=(code,))
    assert words in result.stdout + result.stderr, result.stdout + result.stderr
    if command[0] == "status":
        assert "TRIAL" in result.stdout and f"{sweep.name}_0" not in result.stderr, result.stdout


def test_read_history_of_a_fifo_or_device_is_no_history(tmp_path: Path) -> None:
    """In the job, a trial's policy reads every sibling's primary.jsonl (read_history): a FIFO there blocked the
    trial for ever, /dev/zero filled its memory. Now only a bounded regular file is read."""
    from hpc_tf.sweeps.early_stop import read_history

    os.mkfifo(tmp_path / "fifo.jsonl")
    (tmp_path / "zero.jsonl").symlink_to("/dev/zero")
    (tmp_path / "ok.jsonl").write_text('{"interval": 1, "value": 0.5}\n')
    started = time.monotonic()
    with memory_headroom():
        assert read_history(tmp_path / "fifo.jsonl") == [] and read_history(tmp_path / "zero.jsonl") == []
    assert time.monotonic() - started < 5
    assert read_history(tmp_path / "ok.jsonl") == [0.5] and read_history(tmp_path / "missing.jsonl") == []


def test_memory_stayed_bounded() -> None:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert own < MEMORY_LIMIT / 2**20, f"pytest's own maxrss is {own:.0f} MiB"
    assert STATS["max_child_rss_mib"] < MEMORY_LIMIT / 2**20
    assert STATS["tracebacks"] == 0 and STATS["hangs"] == 0 and STATS["memory_blowups"] == 0, STATS
    assert STATS["misreads"] == 0, STATS
    real = sum(n for surface, n in STATS["configs_generated"].items() if surface.endswith("(real CLI)"))
    assert real >= 50 or SCALE < 1 or real == 0, f"{real} configs through the real CLI"
