"""Wall-time benchmark of the hpc_tf CLI against its floors, measured as whole processes.

What a user waits for is the whole process: interpreter start, imports, config parsing, sbatch.
So every case is one subprocess timed with time.perf_counter() around it. The machine is small
and shared, so the cases run interleaved (one of each per round, the starting case rotating each
round) and we report medians: drift in machine load then hits every case alike, and the ratios
stay meaningful even when the absolute numbers move.

Submitted jobs are held (`--hold`), so the cluster never runs them; all of them are cancelled
with one scancel at the end, also when the benchmark fails.

Usage (from anywhere; the dev cluster must be up, see scripts/dev-cluster.sh):
    python bench/bench_cli.py [--runs 15] [--profile [--profile-runs 7]]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
CONFIG = "configs/digits.yaml"
RESULTS = BENCH / "results" / "cli.json"
PY = sys.executable  # the real interpreter, not a pyenv shim: shims add their own start-up
RENDER_GOAL_MS = 120.0  # median wall time of `render` (and so of `validate`, which does less)
SUBMIT_RATIO_GOAL = 1.2  # median submit / median submitit trivial


@dataclass(frozen=True)
class Case:
    """One process to time; job_id extracts the Slurm job id from its stdout, if it submits."""

    name: str
    argv: list[str]
    job_id: Callable[[str], str] | None = None


def sbatch_job_id(out: str) -> str:
    """`sbatch --parsable` prints `ID` or `ID;CLUSTER`."""
    return out.strip().split(";")[0]


def json_job_id(out: str) -> str:
    """`hpc_tf submit --json` prints {run_id, job_id, run_dir, backend}."""
    return str(json.loads(out)["job_id"])


def last_line(out: str) -> str:
    """The submitit helper prints the job id as its last line."""
    return out.strip().splitlines()[-1]


def make_cases(tmp: Path) -> list[Case]:
    """The six processes, floors first; submitting cases write under tmp."""
    return [
        Case("python -c pass", [PY, "-c", "pass"]),
        Case("bare sbatch", ["sbatch", "--parsable", "--hold", "-o", "/dev/null", "--wrap", "true"], sbatch_job_id),
        Case("validate", [PY, "-m", "hpc_tf", "validate", CONFIG]),
        Case("render", [PY, "-m", "hpc_tf", "render", CONFIG, "--backend", "slurm"]),
        Case(
            "submit",
            [
                PY,
                "-m",
                "hpc_tf",
                "submit",
                CONFIG,
                "--backend",
                "slurm",
                "--runs-dir",
                str(tmp / "runs"),
                "--json",
                "--set",
                "compute_target.additional_parameters.hold=true",
            ],
            json_job_id,
        ),
        Case("submitit trivial", [PY, str(BENCH / "_submitit_trivial.py"), str(tmp / "submitit")], last_line),
    ]


def cluster_env() -> dict[str, str]:
    """os.environ plus the dev cluster's exports, unless SLURM_CONF is already set.

    Saves the caller the `eval "$(scripts/dev-cluster.sh env)"` step; an explicit SLURM_CONF wins.
    """
    env = dict(os.environ)
    # Users' interpreters cache bytecode; a session that disables it would time compilation instead.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    script = REPO / "scripts" / "dev-cluster.sh"
    if "SLURM_CONF" in env or not script.exists():
        return env
    # The script reads HPC_TF_CLUSTER_DIR / HPC_TF_CLUSTER_PORT from this environment: another instance's
    # variables are honoured. If the working copy of the script is broken, the committed one answers.
    proc = subprocess.run([str(script), "env"], capture_output=True, text=True)
    if proc.returncode != 0 or "SLURM_CONF=" not in proc.stdout:
        committed = subprocess.run(
            ["git", "-C", str(REPO), "show", "HEAD:scripts/dev-cluster.sh"], capture_output=True, text=True, check=True
        ).stdout
        proc = subprocess.run(["bash", "-s", "env"], input=committed, capture_output=True, text=True, check=True)
    out = proc.stdout
    for line in out.splitlines():
        words = shlex.split(line)
        if words[:1] == ["export"]:
            env.update(word.split("=", 1) for word in words[1:] if "=" in word)
    return env


def check_cluster(env: dict[str, str]) -> None:
    """Fail early with a hint rather than timing error paths of a cluster that is down."""
    if subprocess.run(["scontrol", "ping"], env=env, capture_output=True).returncode != 0:
        sys.exit("bench_cli: Slurm does not answer; run `scripts/dev-cluster.sh up` first")


def run_once(case: Case, env: dict[str, str]) -> tuple[float, str | None]:
    """Time one whole process in ms; return its job id too. A failing case aborts the bench."""
    start = time.perf_counter()
    proc = subprocess.run(case.argv, cwd=REPO, env=env, capture_output=True, text=True)
    elapsed_ms = (time.perf_counter() - start) * 1000
    if proc.returncode != 0:
        raise RuntimeError(f"{case.name} exited {proc.returncode}: {shlex.join(case.argv)}\n{proc.stderr.strip()}")
    return elapsed_ms, case.job_id(proc.stdout) if case.job_id else None


def check_held(job_ids: list[str], env: dict[str, str]) -> None:
    """Make sure the jobs really are held: a job that runs would load the cluster under us."""
    out = subprocess.run(
        ["squeue", "-h", "-o", "%i %r", "-j", ",".join(job_ids)], env=env, capture_output=True, text=True
    ).stdout
    reasons = dict(line.split(None, 1) for line in out.strip().splitlines())
    bad = {j: reasons.get(j, "not in queue") for j in job_ids if reasons.get(j) != "JobHeldUser"}
    if bad:
        raise RuntimeError(f"jobs not held: {bad}")


def run_rounds(cases: list[Case], runs: int, env: dict[str, str], job_ids: list[str]) -> dict[str, list[float]]:
    """One untimed warm-up round (page cache, .pyc), then `runs` interleaved, rotated rounds."""
    for case in cases:
        _, job = run_once(case, env)
        job_ids.extend([job] if job else [])
    check_held(job_ids, env)
    samples: dict[str, list[float]] = {case.name: [] for case in cases}
    for i in range(runs):
        for case in cases[i % len(cases) :] + cases[: i % len(cases)]:
            ms, job = run_once(case, env)
            samples[case.name].append(ms)
            job_ids.extend([job] if job else [])
    return samples


def cancel(job_ids: list[str], env: dict[str, str]) -> None:
    """One scancel for every job submitted: they are held, so nothing ran."""
    if job_ids:
        subprocess.run(["scancel", *job_ids], env=env, check=False)


def summarize(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Median, min and p90 (inclusive deciles) per case, in ms."""
    return {
        name: {
            "median_ms": statistics.median(ms),
            "min_ms": min(ms),
            "p90_ms": statistics.quantiles(ms, n=10, method="inclusive")[-1],
        }
        for name, ms in samples.items()
    }


def ratios(stats: dict[str, dict[str, float]]) -> dict[str, float]:
    """The goal figures: submit against submitit alone, and what submit adds above its floors."""
    med = {name: s["median_ms"] for name, s in stats.items()}
    return {
        "submit/submitit_trivial": med["submit"] / med["submitit trivial"],
        "render/python_floor": med["render"] / med["python -c pass"],
        "submit_overhead_above_floor_ms": med["submit"] - (med["python -c pass"] + med["bare sbatch"]),
    }


def print_table(stats: dict[str, dict[str, float]], rat: dict[str, float], runs: int) -> None:
    """A fixed-width table, then the ratios."""
    print(f"\n{'case':<18} {'median':>8} {'min':>8} {'p90':>8}   (ms, {runs} interleaved runs)")
    for name, s in stats.items():
        print(f"{name:<18} {s['median_ms']:>8.1f} {s['min_ms']:>8.1f} {s['p90_ms']:>8.1f}")
    print()
    print(
        f"submit / submitit trivial (median ratio): {rat['submit/submitit_trivial']:.2f}   goal <= {SUBMIT_RATIO_GOAL}"
    )
    print(f"render median: {stats['render']['median_ms']:.1f} ms   goal <= {RENDER_GOAL_MS:.0f} ms")
    print(f"render / python -c pass   (median ratio): {rat['render/python_floor']:.2f}")
    print(
        f"submit overhead above floor (submit - python - bare sbatch): {rat['submit_overhead_above_floor_ms']:.1f} ms"
    )


@dataclass(frozen=True)
class ImportRow:
    """One line of -X importtime output (medians over the profiled runs); the module keeps its nesting indent."""

    module: str
    self_ms: float
    cumulative_ms: float


def submit_argv(tmp: Path) -> list[str]:
    """The `submit` case's hpc_tf arguments (without the interpreter)."""
    case = next(c for c in make_cases(tmp) if c.name == "submit")
    return case.argv[case.argv.index("hpc_tf") + 1 :]


def render_argv() -> list[str]:
    return ["render", CONFIG, "--backend", "slurm"]


def importtime(argv: list[str], env: dict[str, str]) -> tuple[list[tuple[str, float, float]], str]:
    """One `python -X importtime ARGV` run: (module with indent, self ms, cumulative ms) in import order, stdout."""
    proc = subprocess.run([PY, "-X", "importtime", *argv], cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"profiled {shlex.join(argv)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cum_us, module = line.removeprefix("import time:").split("|")
        rows.append((module.rstrip(), int(self_us) / 1000, int(cum_us) / 1000))
    return rows, proc.stdout


def package_of(module: str) -> str:
    """The group an import's self time is charged to: its top-level package (stdlib modules as one group)."""
    top = module.strip().split(".")[0]
    stdlib_like = top.startswith("_sysconfigdata") or top in ("org", "nt", "msvcrt", "_winapi")  # platform probes
    if (
        stdlib_like
        or top in sys.stdlib_module_names
        or (top.startswith("_") and top.lstrip("_") in sys.stdlib_module_names)
    ):
        return "stdlib"
    if top.startswith("__editable__"):
        return "editable-install finder (site)"
    return top


def by_cause(rows: list[tuple[str, float, float]]) -> dict[str, float]:
    """Import self time charged to what caused it: the outermost third-party package among a module's ancestors in
    the import tree (asyncio under submitit, typing_extensions under msgspec and markupsafe under jinja2 count as
    submitit's, msgspec's and jinja2's), else `hpc_tf` (its own modules and the stdlib they import), else
    `interpreter (site)` for what site imports (here also a .pth file's certifi), else `stdlib (direct)`."""
    out: dict[str, float] = {}
    stack: list[tuple[int, str]] = []  # importtime prints children before their parent: walk it backwards
    for module, self_ms, _ in reversed(rows):
        depth = (len(module) - len(module.lstrip())) // 2
        name = module.strip()
        while stack and stack[-1][0] >= depth:
            stack.pop()
        stack.append((depth, name))
        chain = [package_of(n) for _, n in stack]  # root first
        third = [p for p in chain if p not in ("stdlib", "hpc_tf", "editable-install finder (site)")]
        if stack[0][1] in ("site", "encodings", "codecs") or chain[0] == "editable-install finder (site)":
            cause = "interpreter (site)"
        elif third:
            cause = third[0]
        elif "hpc_tf" in chain:
            cause = "hpc_tf"
        else:
            cause = "stdlib (direct)"
        out[cause] = out.get(cause, 0.0) + self_ms
    return out


def profile_imports(argv: list[str], env: dict[str, str], runs: int, job_ids: list[str]) -> dict[str, object]:
    """`runs` runs of -X importtime: the top cumulative imports (medians) and self time per package, and what
    the bare interpreter (`python -c pass`) imports anyway, so the difference is the command's own."""
    per_module: dict[str, list[tuple[float, float]]] = {}
    per_package: dict[str, list[float]] = {}
    per_cause: dict[str, list[float]] = {}
    bare: dict[str, list[float]] = {}
    bare_cause: dict[str, list[float]] = {}
    order: list[str] = []
    for _ in range(runs):
        rows, out = importtime(["-m", "hpc_tf", *argv], env)
        if "job_id" in out:
            job_ids.append(json_job_id(out))
        order = order or [m.strip() for m, _, _ in rows]
        sums: dict[str, float] = {}
        for module, self_ms, cum_ms in rows:
            per_module.setdefault(module, []).append((self_ms, cum_ms))
            sums[package_of(module)] = sums.get(package_of(module), 0.0) + self_ms
        for pkg, ms in sums.items():
            per_package.setdefault(pkg, []).append(ms)
        for cause, ms in by_cause(rows).items():
            per_cause.setdefault(cause, []).append(ms)
        base_rows, _ = importtime(["-c", "pass"], env)
        base_sums: dict[str, float] = {}
        for module, self_ms, _ in base_rows:
            base_sums[package_of(module)] = base_sums.get(package_of(module), 0.0) + self_ms
        for pkg, ms in base_sums.items():
            bare.setdefault(pkg, []).append(ms)
        for cause, ms in by_cause(base_rows).items():
            bare_cause.setdefault(cause, []).append(ms)
    med = statistics.median
    top = sorted(
        (ImportRow(m, med(r[0] for r in v), med(r[1] for r in v)) for m, v in per_module.items()),
        key=lambda r: -r.cumulative_ms,
    )
    packages = {pkg: med(v + [0.0] * (runs - len(v))) for pkg, v in per_package.items()}
    bare_packages = {pkg: med(v + [0.0] * (runs - len(v))) for pkg, v in bare.items()}
    return {
        "runs": runs,
        "top": [asdict(r) for r in top[:25]],
        "self_ms_by_package": dict(sorted(packages.items(), key=lambda kv: -kv[1])),
        "self_ms_by_cause": dict(
            sorted(((c, med(v + [0.0] * (runs - len(v)))) for c, v in per_cause.items()), key=lambda kv: -kv[1])
        ),
        "bare_interpreter_self_ms_by_package": bare_packages,
        "bare_interpreter_self_ms_by_cause": {c: med(v + [0.0] * (runs - len(v))) for c, v in bare_cause.items()},
        "total_ms": sum(packages.values()),
        "bare_total_ms": sum(bare_packages.values()),
        "module_order": order,
    }


# `python -c` that prints when it started running code and when it is done: the bare interpreter's start-up and
# teardown, measured the way _submit_phases.py measures its own
BARE_MARKS = [PY, "-c", "import time; a = time.time(); print(a, time.time())"]


def profile_phases(
    argv: list[str], modules: list[str], env: dict[str, str], runs: int, tmp: Path, job_ids: list[str]
) -> dict[str, object]:
    """bench/_submit_phases.py `runs` times (imports first, then hpc_tf's phases timed), medians; then once
    under cProfile for the top functions of the work part."""
    listing = tmp / "modules.txt"
    listing.write_text("\n".join(modules) + "\n")
    driver = [PY, str(BENCH / "_submit_phases.py"), "--preimport", str(listing)]
    docs = []
    wall = []
    bare_marks = []
    for i in range(runs + 1):
        extra = ["--cprofile", "30"] if i == runs else []
        t0 = time.time()
        proc = subprocess.run([*driver, *extra, "--", *argv], cwd=REPO, env=env, capture_output=True, text=True)
        t1 = time.time()
        if proc.returncode != 0:
            raise RuntimeError(f"_submit_phases.py exited {proc.returncode}: {proc.stderr[-2000:]}")
        doc = json.loads(proc.stdout.strip().splitlines()[-1])
        doc["startup_ms"] = (doc["driver_started_at"] - t0) * 1000  # exec -> this module runs (site done)
        doc["teardown_ms"] = (t1 - doc["driver_done_at"]) * 1000  # JSON printed -> process gone (finalisation)
        if "job_id" in doc["cli_stdout"]:
            job_ids.append(json_job_id(doc["cli_stdout"]))
        # the bare interpreter's share of the same two marks, interleaved
        b0 = time.time()
        mark = subprocess.run(BARE_MARKS, env=env, capture_output=True, text=True, check=True).stdout.split()
        b1 = time.time()
        if i < runs:
            docs.append(doc)
            wall.append((t1 - t0) * 1000)
            bare_marks.append(((float(mark[0]) - b0) * 1000, (b1 - float(mark[1])) * 1000))
        else:
            cprof = doc
    med = statistics.median
    labels = dict.fromkeys(label for d in docs for label in d["phases"])
    phases = {
        label: {
            "incl_ms": med([d["phases"].get(label, {}).get("incl_ms", 0.0) for d in docs]),
            "excl_ms": med([d["phases"].get(label, {}).get("excl_ms", 0.0) for d in docs]),
            "calls": docs[0]["phases"].get(label, {}).get("calls", 0),
        }
        for label in labels
    }
    return {
        "runs": runs,
        "wall_ms": med(wall),
        "imports_ms": med([d["imports_ms"] for d in docs]),
        "main_ms": med([d["main_ms"] for d in docs]),
        "startup_ms": med([d["startup_ms"] for d in docs]),
        "teardown_ms": med([d["teardown_ms"] for d in docs]),
        "bare_startup_ms": med([b[0] for b in bare_marks]),
        "bare_teardown_ms": med([b[1] for b in bare_marks]),
        "phases": phases,
        "missing": docs[0]["missing"],
        "cprofile_top": cprof.get("cprofile_top", []),
        "cprofile_tottime_top": cprof.get("cprofile_tottime_top", []),
    }


# How the itemisation groups the exclusive phase times of _submit_phases.py
ITEM_GROUPS = [
    ("argparse: build every sub-command's parser", ["argparse: build parser"]),
    ("settings", ["settings"]),
    ("config: YAML read + parse", ["config: read + parse YAML"]),
    ("config: validate", ["config: validate", "config: load + validate"]),
    ("backend probe: `scontrol ping` subprocess", ["subprocess.run: scontrol", "prepare: choose backend"]),
    ("target, plan, render", ["prepare: resolve target", "prepare: plan", "prepare: render template", "prepare"]),
    ("snapshot: plan + copy", ["snapshot: plan", "snapshot: copy"]),
    ("job interpreter + package check", ["job interpreter", "check job packages"]),
    ("fsync (files + directories)", ["fsync"]),
    (
        "run dir: files, YAML dump, status lock (no fsync)",
        [
            "run dir: create",
            "status.json transition",
            "write job.json",
            "write run dir",
            "write run dir: yaml dump",
            "write_atomic (all)",
        ],
    ),
    ("submitit around sbatch", ["submitit: submit"]),
    ("sbatch as called by submitit", ["sbatch (submitit CommandFunction)"]),
]


def itemise(
    stats: dict[str, dict[str, float]], imports: dict[str, object], phases: dict[str, object]
) -> list[tuple[str, float]]:
    """submit's median wall time, item by item: the floors, imports by package (beyond the bare interpreter's),
    the work by phase, and what is left (interpreter start/teardown of a bigger process, unmeasured code)."""
    med = {name: s["median_ms"] for name, s in stats.items()}
    items: list[tuple[str, float]] = [
        ("floor: python -c pass", med["python -c pass"]),
        ("floor: bare sbatch", med["bare sbatch"]),
    ]
    bare = imports["bare_interpreter_self_ms_by_cause"]
    for cause, ms in imports["self_ms_by_cause"].items():
        extra = ms - bare.get(cause, 0.0)
        if abs(extra) >= 0.05:
            items.append((f"import: {cause} (with the stdlib it pulls in)", extra))
    ph = phases["phases"]
    used = set()
    for label, members in ITEM_GROUPS:
        ms = sum(ph[m]["excl_ms"] for m in members if m in ph)
        used |= set(members)
        if label == "sbatch as called by submitit":
            items.append(("sbatch via submitit, above the bare sbatch", ms - med["bare sbatch"]))
        else:
            items.append((label, ms))
    other = phases["main_ms"] - sum(ph[m]["excl_ms"] for m in ph if m in used or m.startswith("subprocess.run"))
    items.append(("rest of main (unwrapped code, printing)", other))
    items.append(("interpreter start-up above the bare one", phases["startup_ms"] - phases["bare_startup_ms"]))
    items.append(
        (
            "teardown above the bare one (a bigger heap, more modules)",
            phases["teardown_ms"] - phases["bare_teardown_ms"],
        )
    )
    other_subprocess = sum(ph[m]["excl_ms"] for m in ph if m.startswith("subprocess.run") and m not in used)
    if other_subprocess:
        items.append(("other subprocesses", other_subprocess))
    items.append(
        (
            "residual: submit - everything above (noise, code between the marks)",
            med["submit"] - sum(ms for _, ms in items),
        )
    )
    return items


def print_profile(prof: dict[str, object], stats: dict[str, dict[str, float]]) -> None:
    for name in ("render", "submit"):
        imp = prof[f"importtime_{name}"]
        print(
            f"\n{'cumulative':>10} {'self':>8}  import   (ms, medians of {imp['runs']}, python -X importtime -m hpc_tf {name} ...)"
        )
        for r in imp["top"][:15]:
            print(f"{r['cumulative_ms']:>10.1f} {r['self_ms']:>8.1f} {r['module']}")
        bare = imp["bare_interpreter_self_ms_by_package"]
        print(
            f"  import self time by package (ms; total {imp['total_ms']:.1f}, bare interpreter {imp['bare_total_ms']:.1f}):"
        )
        print(
            "   "
            + ", ".join(
                f"{p} {ms:.1f}" + (f" (bare {bare[p]:.1f})" if p in bare else "")
                for p, ms in imp["self_ms_by_package"].items()
                if ms >= 0.5
            )
        )
        print("  import self time by cause (stdlib charged to the package that pulled it in; ms):")
        print("   " + ", ".join(f"{c} {ms:.1f}" for c, ms in imp["self_ms_by_cause"].items() if ms >= 0.5))
    ph = prof["phases_submit"]
    print(f"\nsubmit's work, timed in-process after importing everything first ({ph['runs']} runs, medians, ms):")
    print(
        f"  start-up {ph['startup_ms']:.1f} (bare {ph['bare_startup_ms']:.1f}), imports {ph['imports_ms']:.1f}, "
        f"main() {ph['main_ms']:.1f}, teardown {ph['teardown_ms']:.1f} (bare {ph['bare_teardown_ms']:.1f}); "
        f"whole driver process {ph['wall_ms']:.1f}"
    )
    for label, v in sorted(ph["phases"].items(), key=lambda kv: -kv[1]["incl_ms"]):
        print(f"  {v['incl_ms']:>8.2f} incl {v['excl_ms']:>8.2f} excl {v['calls']:>3}x  {label}")
    if ph["missing"]:
        print(f"  (not found, so not timed: {', '.join(ph['missing'])})")
    print("\n  cProfile of main() (one run; cumulative, tottime ms, calls, function):")
    for r in ph["cprofile_top"][:20]:
        print(f"  {r['cumtime_ms']:>8.2f} {r['tottime_ms']:>8.2f} {r['calls']:>6} {r['function']}")
    print("  by own time:")
    for r in ph["cprofile_tottime_top"][:12]:
        print(f"  {r['cumtime_ms']:>8.2f} {r['tottime_ms']:>8.2f} {r['calls']:>6} {r['function']}")
    print(f"\nsubmit ({stats['submit']['median_ms']:.1f} ms median), item by item (ms):")
    for label, ms in prof["items"]:
        print(f"  {ms:>8.1f}  {label}")


def run_profile(
    env: dict[str, str], runs: int, tmp: Path, job_ids: list[str], stats: dict[str, dict[str, float]]
) -> dict[str, object]:
    prof: dict[str, object] = {
        "importtime_render": profile_imports(render_argv(), env, runs, job_ids),
        "importtime_submit": profile_imports(submit_argv(tmp), env, runs, job_ids),
    }
    modules = prof["importtime_submit"]["module_order"]
    prof["phases_submit"] = profile_phases(submit_argv(tmp), modules, env, runs, tmp, job_ids)
    prof["items"] = itemise(stats, prof["importtime_submit"], prof["phases_submit"])
    return prof


def write_json(
    stats: dict[str, dict[str, float]],
    rat: dict[str, float],
    samples: dict[str, list[float]],
    profile: dict[str, object] | None,
) -> None:
    """Everything, raw samples included, so later runs can be compared offline."""
    from _jobs import git_state

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if profile is not None:
        profile = {**profile}
        for key in ("importtime_render", "importtime_submit"):
            profile[key] = {k: v for k, v in profile[key].items() if k != "module_order"}
    doc = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": PY,
        "python_version": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_after": os.getloadavg(),
        "code": git_state(),
        "runs": len(next(iter(samples.values()))),
        "stats": stats,
        "ratios": rat,
        "goals": {"render_ms": RENDER_GOAL_MS, "submit/submitit_trivial": SUBMIT_RATIO_GOAL},
        "samples_ms": samples,
        "profile": profile,
    }
    RESULTS.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(REPO)}")


def parse_args() -> argparse.Namespace:
    """--runs N (default 15), --profile, --profile-runs N."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=15, help="timed runs per case (default 15)")
    p.add_argument(
        "--profile",
        action="store_true",
        help="then: -X importtime of render and submit, submit's phases timed in-process, a cProfile of its "
        "work, and submit's time item by item",
    )
    p.add_argument("--profile-runs", type=int, default=7, help="runs per profile measurement (default 7)")
    args = p.parse_args()
    if args.runs < 2:
        p.error("--runs must be at least 2 (p90 needs two samples)")
    return args


def main() -> None:
    """Bench, cancel every held job whatever happens, report, optionally profile."""
    args = parse_args()
    env = cluster_env()
    check_cluster(env)
    job_ids: list[str] = []
    profile = None
    with tempfile.TemporaryDirectory(prefix="hpc_tf-bench-") as tmp:
        try:
            samples = run_rounds(make_cases(Path(tmp)), args.runs, env, job_ids)
            stats = summarize(samples)
            rat = ratios(stats)
            print_table(stats, rat, args.runs)
            if args.profile:
                profile = run_profile(env, args.profile_runs, Path(tmp), job_ids, stats)
        finally:
            cancel(job_ids, env)
    if profile is not None:
        print_profile(profile, stats)
    write_json(stats, rat, samples, profile)


if __name__ == "__main__":
    main()
