"""Launch overhead per backend: from starting the submission to the entry script's first line, and where it goes.

What a user waits for before their code runs is everything between typing the command and the
script's first line: the submit process, slurmctld scheduling, the batch script, srun, and for
hpc_tf its in-job runtime (`python -m hpc_tf.job .`, which starts the entry script). The entry
script (bench/_first_line.py) prints `FIRST_LINE <time.time()>` before it imports anything; the
overhead is that timestamp minus time.time() taken right before the submitting process starts.
All nodes are this machine, so every clock below is the same clock.

Variants, run interleaved (one of each per round, the first rotating; medians reported):
  hpc_tf slurm       hpc_tf submit --backend slurm --wait, single process
  sbatch srun        hand-written: #SBATCH lines + `exec srun --ntasks=1 python -u first_line.py`
  hpc_tf mpi srun    hpc_tf, distributed_backend mpi, 2 nodes x 1, launcher srun (rank 0's line)
  sbatch srun pmix   hand-written: 2 nodes, `exec srun --mpi=pmix --ntasks=2 python -u …`
  hpc_tf ps script   hpc_tf, distributed_backend ps, 4 nodes, 2 workers + 1 ps, ps_mode script
  hpc_tf local       hpc_tf submit --backend local --wait, single process
  python by hand     `python -u first_line.py` as a child of the benchmark (the local floor)

Decomposition (default; --no-trace turns it off): every run carries a trace. Python processes
import bench/_trace/sitecustomize.py (on PYTHONPATH) and log when their interpreter is up, when
hpc_tf.job opens job.json (its imports are done) and when anything spawns or execs a program; the
job scripts log `$EPOCHREALTIME` (a bash builtin: no fork) at their start and right before the
launcher (hpc_tf's through a bench-only site template, HPC_TF_TEMPLATE_DIR, that wraps the shipped
_prologue.sh.j2; the hand-written ones in their own text); slurmctld's and slurmd's logs
(millisecond timestamps) say when the submission was accepted, the job allocated, the batch script
and step 0 launched. Per run the chain of these events is cut into segments; medians per segment.

The scheduler's wait (submission accepted → job allocated) is quantised by Slurm's scheduling
cycles (on the dev cluster: backfill every second, bf_interval=1), so it is uniform over 0–1 s
depending on the phase at which sbatch happens to land. That is the largest noise term and no
launcher's doing, so (1) each run starts after an untimed random pause (--jitter, default 1 s) so
that no variant keeps a lucky or unlucky phase, and (2) every total is also given without it.

Every job is named bench-launch-<pid>; after each run the script waits until none of them holds
a node (not timed), and at the end `scancel --name` removes whatever is left, also on failure.

Usage (from anywhere; the dev cluster must be up, see scripts/dev-cluster.sh):
    python bench/bench_launch.py [--runs 8] [--warmup 1] [--jitter 1.0] [--no-trace] [--profile]
                                 [--variants 'hpc_tf slurm,sbatch srun']
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shlex
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from _jobs import (
    BENCH,
    PY,
    REPO,
    Finished,
    SlurmLogs,
    cancel_all,
    check_cluster,
    cluster_env,
    interleave,
    job_name,
    read_trace,
    run_hpc_tf,
    run_sbatch,
    segments,
    settle,
    summarize,
    tail,
    trace_echo,
    traced_env,
    write_config,
    write_results,
)
from bench_cli import by_cause

RESULTS = BENCH / "results" / "launch.json"
ENTRY = "first_line.py"
TIMEOUT_S = 180.0
PAIRS = [
    ("hpc_tf slurm", "sbatch srun"),
    ("hpc_tf mpi srun", "sbatch srun pmix"),
    ("hpc_tf local", "python by hand"),
    ("hpc_tf slurm what-if", "sbatch srun"),
    ("hpc_tf mpi what-if", "sbatch srun pmix"),
]
GOALS_MS = {  # hpc_tf minus by hand, medians
    "hpc_tf slurm": 400.0,
    "hpc_tf mpi srun": 500.0,
    "hpc_tf slurm what-if": 400.0,
    "hpc_tf mpi what-if": 500.0,
}

# Segments: (event that ends it, key). A segment runs from the previous event of the chain that the run
# has to this one. The keys are shared, so hpc_tf and hand-written chains line up side by side.
SUBMIT_SLURM = [
    ("t0", ""),
    ("site:submit", "submit: interpreter start"),
    ("spawn:submit>scontrol", "submit: imports, load + validate config"),
    ("spawn:submit>sbatch", "submit: ping, render, run dir, snapshot, records"),
]
SLURM_SIDE = [
    ("rpc", "sbatch: start + submit RPC"),
    ("alloc", "slurmctld: wait for a scheduling cycle"),
    ("batch", "slurmctld -> slurmd: batch launch"),
    ("script_start", "slurmd: batch step, bash start"),
    ("before_launch", "job script: prologue"),
    ("step", "srun: step creation -> slurmd launch request"),
]
IN_JOB_HPC = [
    ("site:job", "task: fork/exec + interpreter start"),
    ("open:job", "hpc_tf.job: imports"),
    ("spawn:job", "hpc_tf.job: setup -> spawn/exec entry"),
    ("site:entry", "entry: interpreter start"),
    ("first_line", "entry: first line"),
]
IN_JOB_HAND = [
    ("site:entry", "task: fork/exec + interpreter start"),
    ("first_line", "entry: first line"),
]
LOCAL_HPC = [
    ("t0", ""),
    ("site:submit", "submit: interpreter start"),
    ("spawn:submit", "submit: imports, config, render, run dir, snapshot, records"),
    ("site:supervisor", "supervisor: interpreter start"),
    ("spawn:supervisor", "supervisor: imports -> bash job.sh"),
    ("script_start", "bash start"),
    ("before_launch", "job script: prologue"),
    *IN_JOB_HPC,
]
CHAINS = {
    "hpc_tf slurm": SUBMIT_SLURM + SLURM_SIDE + IN_JOB_HPC,
    "sbatch srun": [("t0", ""), *SLURM_SIDE, *IN_JOB_HAND],
    "hpc_tf mpi srun": SUBMIT_SLURM + SLURM_SIDE + IN_JOB_HPC,
    "sbatch srun pmix": [("t0", ""), *SLURM_SIDE, *IN_JOB_HAND],
    "hpc_tf ps script": SUBMIT_SLURM + SLURM_SIDE + IN_JOB_HPC,
    "hpc_tf local": LOCAL_HPC,
    "python by hand": [("t0", ""), *IN_JOB_HAND],
    "hpc_tf slurm what-if": SUBMIT_SLURM + SLURM_SIDE + IN_JOB_HPC,
    "hpc_tf mpi what-if": SUBMIT_SLURM + SLURM_SIDE + IN_JOB_HPC,
}
SCHED_WAIT = "slurmctld: wait for a scheduling cycle"


def hpc_tf_configs(name: str, project: Path) -> dict[str, dict[str, object]]:
    """The three hpc_tf job shapes; max_run_duration only guards against a hung run."""
    base = {
        "experiment": name,
        "source_directory": str(project),
        "entry_script": ENTRY,
        "max_run_duration_seconds": 300,
    }
    return {
        "single": base,
        "mpi": {**base, "distributed_backend": "mpi", "node_count": 2, "process_count_per_node": 1, "launcher": "srun"},
        "ps": {
            **base,
            "distributed_backend": "ps",
            "node_count": 4,
            "worker_count": 2,
            "parameter_server_count": 1,
            "ps_mode": "script",
        },
    }


def sbatch_scripts(name: str, entry: Path, trace: bool) -> dict[str, str]:
    """What a user would write by hand for the same two shapes, with the same time limit.

    TF_USE_LEGACY_KERAS=1 where hpc_tf sets it too (distributed jobs), so the jobs match. With the
    trace, two bash-builtin lines log the script's start and the moment before srun.
    """
    cmd = f"{shlex.quote(PY)} -u {shlex.quote(str(entry))}"
    head = f"#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --output=slurm-%j.out\n#SBATCH --time=5\n"
    start, before = (trace_echo("script_start") + "\n", trace_echo("before_launch") + "\n") if trace else ("", "")
    return {
        "single": head + "#SBATCH --nodes=1\n#SBATCH --ntasks=1\n" + start + before + f"exec srun --ntasks=1 {cmd}\n",
        "pmix": head + "#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=1\n" + start + "export TF_USE_LEGACY_KERAS=1\n"
        f"{before}exec srun --mpi=pmix --ntasks=2 {cmd}\n",
    }


def trace_templates(folder: Path) -> Path:
    """A site template folder whose _prologue.sh.j2 is the shipped one between two trace lines."""
    shipped = REPO / "hpc_tf" / "sbatch_templates" / "_prologue.sh.j2"
    if not shipped.is_file():  # an installed hpc_tf: ask it where its templates are
        from hpc_tf.runs.render import builtin_template_dir

        shipped = builtin_template_dir() / "_prologue.sh.j2"
    folder.mkdir(parents=True, exist_ok=True)
    text = shipped.read_text()
    (folder / "_prologue.sh.j2").write_text(
        trace_echo("script_start")
        + "\n"
        + text
        + ("" if text.endswith("\n") else "\n")
        + trace_echo("before_launch")
        + "\n"
    )
    return folder


def whatif_templates(folder: Path, patches: str) -> Path:
    """Trace templates whose slurm.sh.j2 starts `bench/_whatif.py PATCHES hpc_tf.job .` instead of
    `-m hpc_tf.job .` (the proposals emulated in the job too); anything else is left as shipped."""
    trace_templates(folder)
    shipped = (REPO / "hpc_tf" / "sbatch_templates" / "slurm.sh.j2").read_text()
    line = "exec {{ launch | shjoin }}"
    if line not in shipped:
        raise SystemExit("bench_launch --whatif: slurm.sh.j2 no longer has `exec {{ launch | shjoin }}`")
    tail = f'["{BENCH / "_whatif.py"}", "{patches}", "hpc_tf.job", "."]'
    replaced = (
        '{% if launch[-3:] == ["-m", "hpc_tf.job", "."] %}'
        f"exec {{{{ (launch[:-3] + {tail}) | shjoin }}}}"
        "{% else %}" + line + "{% endif %}"
    )
    (folder / "slurm.sh.j2").write_text(shipped.replace(line, replaced))
    return folder


def first_line_at(done: Finished) -> float:
    """Rank 0's FIRST_LINE timestamp (time.time())."""
    for line in done.output.read_text(errors="replace").splitlines():
        words = line.split()
        if words[:1] == ["FIRST_LINE"] and words[2:3] in (["0"], []):
            return float(words[1])
    raise RuntimeError(f"no FIRST_LINE from rank 0 in {done.output}:\n{tail(done.output)}")


def run_by_hand(entry: Path, out_dir: Path, env: Mapping[str, str]) -> Finished:
    """The local floor: the entry script as a plain child process."""
    out_dir.mkdir(exist_ok=True)
    output = out_dir / f"hand-{time.monotonic_ns()}.out"
    submitted_at = time.time()
    with open(output, "wb") as out:
        proc = subprocess.run([PY, "-u", str(entry)], cwd=entry.parent, env=dict(env), stdout=out, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{entry} exited {proc.returncode}")
    return Finished(submitted_at, "", output, "COMPLETED")


def make_runners(
    tmp: Path, name: str, trace: bool, whatif: str | None = None
) -> tuple[dict[str, Callable[[Mapping[str, str]], Finished]], dict[str, object]]:
    """One callable per variant, each running one job to its end with the environment it is given."""
    project = tmp / "project"
    project.mkdir()
    shutil.copy(BENCH / "_first_line.py", project / ENTRY)
    configs = {k: write_config(tmp / f"{k}.json", c) for k, c in hpc_tf_configs(name, project).items()}
    hand = tmp / "hand"
    hand.mkdir()
    scripts = {}
    for key, text in sbatch_scripts(name, project / ENTRY, trace).items():
        scripts[key] = hand / f"{key}.sh"
        scripts[key].write_text(text)
    runs = tmp / "runs"

    def hpc(key: str, backend: str) -> Callable[[Mapping[str, str]], Finished]:
        return lambda env: run_hpc_tf(configs[key], backend, runs, env, TIMEOUT_S)

    def sbatch(key: str) -> Callable[[Mapping[str, str]], Finished]:
        return lambda env: run_sbatch(scripts[key], hand, "FIRST_LINE", env, TIMEOUT_S)

    runners = {
        "hpc_tf slurm": hpc("single", "slurm"),
        "sbatch srun": sbatch("single"),
        "hpc_tf mpi srun": hpc("mpi", "slurm"),
        "sbatch srun pmix": sbatch("pmix"),
        "hpc_tf ps script": hpc("ps", "slurm"),
        "hpc_tf local": hpc("single", "local"),
        "python by hand": lambda env: run_by_hand(project / ENTRY, tmp / "by-hand", env),
    }
    if whatif:
        templates = str(whatif_templates(tmp / "whatif-templates", whatif))
        wrapper = [PY, str(BENCH / "_whatif.py"), whatif, "hpc_tf"]

        def what_if(key: str) -> Callable[[Mapping[str, str]], Finished]:
            def run(env: Mapping[str, str]) -> Finished:
                if "pyrender" in whatif.split(","):  # the hand-written renderer adds the trace and the job's wrapper
                    env = {k: v for k, v in env.items() if k != "HPC_TF_TEMPLATE_DIR"}
                    env["BENCH_WHATIF_JOB_PATCHES"] = whatif
                else:
                    env = {**env, "HPC_TF_TEMPLATE_DIR": templates}
                return run_hpc_tf(configs[key], "slurm", runs, env, TIMEOUT_S, command=wrapper)

            return run

        runners["hpc_tf slurm what-if"] = what_if("single")
        runners["hpc_tf mpi what-if"] = what_if("mpi")
    jobs = {
        "hpc_tf_configs": hpc_tf_configs(name, Path("<tmp>/project")),
        "sbatch_scripts": sbatch_scripts(name, Path("<tmp>/project") / ENTRY, trace),
    }
    return runners, jobs


def ratios(stats: dict[str, dict[str, float]], key: str = "median_ms") -> dict[str, float]:
    """hpc_tf over hand-written, median over median, and the difference in ms, per pair."""
    out = {}
    for ours, theirs in PAIRS:
        if ours in stats and theirs in stats:
            a, b = stats[ours][key], stats[theirs][key]
            out[f"{ours} / {theirs}"] = a / b
            out[f"{ours} - {theirs} (ms)"] = a - b
    return out


def print_table(
    stats: dict[str, dict[str, float]], rat: dict[str, float], runs: int, excl: dict[str, dict[str, float]]
) -> None:
    """Totals, then the pairs; with the decomposition, totals without the scheduler's wait too."""
    print(
        f"\n{'variant':<18} {'median':>8} {'min':>8} {'max':>8} {'n':>3}"
        + (f" {'w/o sched wait':>15}" if excl else "")
        + f"   (ms from submit to rank 0's first line, {runs} interleaved runs)"
    )
    for name, s in stats.items():
        extra = f" {excl[name]['median_ms']:>15.0f}" if name in excl else (" " * 16 if excl else "")
        print(f"{name:<18} {s['median_ms']:>8.0f} {s['min_ms']:>8.0f} {s['max_ms']:>8.0f} {s['n']:>3}{extra}")
    print()
    ex_rat = ratios(excl) if excl else {}
    for ours, theirs in PAIRS:
        if f"{ours} / {theirs}" not in rat:
            continue
        goal = f"   goal <= +{GOALS_MS[ours]:.0f} ms" if ours in GOALS_MS else ""
        line = (
            f"{ours} / {theirs}: {rat[f'{ours} / {theirs}']:.2f} (median ratio), "
            f"{rat[f'{ours} - {theirs} (ms)']:+.0f} ms"
        )
        if f"{ours} - {theirs} (ms)" in ex_rat:
            line += f"; without the scheduler's wait {ex_rat[f'{ours} / {theirs}']:.2f}, {ex_rat[f'{ours} - {theirs} (ms)']:+.0f} ms"
        print(line + goal)


def decomposition(records: list[dict[str, object]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per variant and segment: median, min, max (ms) and how many runs had it."""
    per: dict[str, dict[str, list[float]]] = {}
    for rec in records:
        for key, ms in rec["segments"].items():
            per.setdefault(str(rec["variant"]), {}).setdefault(key, []).append(ms)
    return {
        variant: {
            key: {"median_ms": statistics.median(v), "min_ms": min(v), "max_ms": max(v), "n": len(v)}
            for key, v in segs.items()
        }
        for variant, segs in per.items()
    }


def print_decomposition(dec: dict[str, dict[str, dict[str, float]]], variants: list[str]) -> None:
    """hpc_tf's segments next to the hand-written job's, per pair (then any variant not in a pair)."""
    shown = set()
    for ours, theirs in PAIRS:
        if ours not in dec:
            continue
        shown |= {ours, theirs}
        a, b = dec[ours], dec.get(theirs, {})
        keys = [k for _, k in CHAINS[ours] if k] + [k for _, k in CHAINS.get(theirs, []) if k and k not in a]
        print(f"\n{'segment (median ms)':<52} {ours:>16} {theirs:>16} {'delta':>8}")
        sum_a = sum_b = 0.0
        for key in dict.fromkeys(keys):
            va, vb = a.get(key, {}).get("median_ms"), b.get(key, {}).get("median_ms")
            sum_a += va or 0.0
            sum_b += vb or 0.0
            fa = f"{va:>16.1f}" if va is not None else f"{'-':>16}"
            fb = f"{vb:>16.1f}" if vb is not None else f"{'-':>16}"
            print(f"{key:<52} {fa} {fb} {(va or 0.0) - (vb or 0.0):>+8.1f}")
        print(f"{'sum of segment medians':<52} {sum_a:>16.1f} {sum_b:>16.1f} {sum_a - sum_b:>+8.1f}")
    for variant in variants:
        if variant in dec and variant not in shown:
            print(f"\n{'segment (median ms)':<52} {variant:>16}")
            for _, key in CHAINS[variant]:
                if key in dec[variant]:
                    print(f"{key:<52} {dec[variant][key]['median_ms']:>16.1f}")


# --------------------------------------------------------------------------- --profile: the in-job runtime offline


def clean_job_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment a task would have, minus Slurm's step variables (hpc_tf.job then runs as one local task)."""
    out = {k: v for k, v in env.items() if not k.startswith(("SLURM_", "HPC_TF_", "OMPI_COMM_WORLD"))}
    out["PYTHONPATH"] = str(REPO) + (os.pathsep + out["PYTHONPATH"] if out.get("PYTHONPATH") else "")
    out["PYTHONUNBUFFERED"] = "1"
    out.pop("PYTHONDONTWRITEBYTECODE", None)
    return out


def queued_run_dir(config: Path, runs: Path, env: Mapping[str, str]) -> Path:
    """A real run directory in its queued state: `hpc_tf submit` of a held job, then scancel."""
    import json

    argv = [PY, "-m", "hpc_tf", "submit", str(config), "--backend", "slurm", "--runs-dir", str(runs), "--json"]
    argv += ["--set", "compute_target.additional_parameters.hold=true"]
    proc = subprocess.run(argv, cwd=REPO, env=dict(env), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"held submit failed: {proc.stderr.strip()}")
    info = json.loads(proc.stdout)
    subprocess.run(["scancel", str(info["job_id"])], env=dict(env), check=False)
    return Path(info["run_dir"])


def parse_importtime(stderr: str) -> list[tuple[str, float, float]]:
    """(module with its nesting indent, self ms, cumulative ms) in import order, from -X importtime output."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cum_us, module = line.removeprefix("import time:").split("|")
        rows.append((module.rstrip(), int(self_us) / 1000, int(cum_us) / 1000))
    return rows


def profile_in_job(config: Path, tmp: Path, env: Mapping[str, str], runs: int) -> dict[str, object]:
    """`python -m hpc_tf.job RUN_DIR` on copies of a queued run directory, against `python first_line.py`,
    interleaved: start -> entry's first line (the runtime's whole cost, no Slurm), its traced segments, and
    the median import times of `python -X importtime -m hpc_tf.job` (top cumulative)."""
    source = queued_run_dir(config, tmp / "profile-runs", env)
    entry = source / "snapshot" / ENTRY
    base = clean_job_env(env)
    samples: dict[str, list[float]] = {"python -m hpc_tf.job RUN": [], "python first_line.py": []}
    segs: list[dict[str, float]] = []
    imports: dict[str, list[tuple[float, float]]] = {}
    causes: dict[str, list[float]] = {}
    totals: list[float] = []
    for i in range(runs + 1):  # round 0: warm-up
        copy = tmp / f"profile-copy-{i}"
        shutil.copytree(source, copy, symlinks=True)
        trace = tmp / f"profile-trace-{i}.log"
        t0 = time.time()
        subprocess.run([PY, "-u", "-m", "hpc_tf.job", "."], cwd=copy, env=traced_env(base, trace), check=True)
        job_first = first_line_at(Finished(t0, "", copy / "logs" / "rank-0.out", "COMPLETED"))
        out = tmp / f"profile-hand-{i}.out"
        t1 = time.time()
        with open(out, "wb") as handle:  # traced too: both pay the trace's few hundred microseconds
            hand_env = traced_env(base, tmp / f"profile-trace-hand-{i}.log")
            subprocess.run([PY, "-u", str(entry)], cwd=entry.parent, env=hand_env, stdout=handle, check=True)
        hand_first = first_line_at(Finished(t1, "", out, "COMPLETED"))
        copy2 = tmp / f"profile-copy-{i}-imp"
        shutil.copytree(source, copy2, symlinks=True)
        proc = subprocess.run(
            [PY, "-X", "importtime", "-u", "-m", "hpc_tf.job", "."], cwd=copy2, env=base, capture_output=True, text=True
        )
        if i == 0:
            continue
        samples["python -m hpc_tf.job RUN"].append((job_first - t0) * 1000)
        samples["python first_line.py"].append((hand_first - t1) * 1000)
        events = {**read_trace(trace), "t0": t0, "first_line": job_first}
        segs.append(segments([("t0", ""), *IN_JOB_HPC], events))
        rows = parse_importtime(proc.stderr)
        for module, self_ms, cum_ms in rows:
            imports.setdefault(module, []).append((self_ms, cum_ms))
        for cause, ms in by_cause(rows).items():
            causes.setdefault(cause, []).append(ms)
        totals.append(sum(r[1] for r in rows))
    seg_keys = dict.fromkeys(k for s in segs for k in s)
    top = sorted(
        (
            (m, statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows))
            for m, rows in imports.items()
        ),
        key=lambda row: -row[2],
    )[:20]
    return {
        "runs": runs,
        "first_line_ms": {k: statistics.median(v) for k, v in samples.items()},
        "samples_ms": samples,
        "segments_ms": {k: statistics.median(s[k] for s in segs if k in s) for k in seg_keys},
        "importtime_top": [{"module": m, "self_ms": s, "cumulative_ms": c} for m, s, c in top],
        "importtime_total_ms": statistics.median(totals),
        "importtime_by_cause_ms": dict(
            sorted(
                ((c, statistics.median(v + [0.0] * (runs - len(v)))) for c, v in causes.items()), key=lambda kv: -kv[1]
            )
        ),
    }


def print_profile(prof: Mapping[str, object]) -> None:
    first = prof["first_line_ms"]
    print(f"\nin-job runtime offline ({prof['runs']} interleaved runs, medians; no Slurm, one local task)")
    for name, ms in first.items():
        print(f"  start -> entry's first line, {name:<26} {ms:8.1f} ms")
    vals = list(first.values())
    print(f"  the runtime's own cost (difference)                      {vals[0] - vals[1]:8.1f} ms")
    for key, ms in prof["segments_ms"].items():
        print(f"    {key:<52} {ms:8.1f} ms")
    print(f"\n{'cumulative':>10} {'self':>8}  import   (ms, medians, python -X importtime -m hpc_tf.job RUN_DIR)")
    for row in prof["importtime_top"]:
        print(f"{row['cumulative_ms']:>10.1f} {row['self_ms']:>8.1f} {row['module']}")
    print(
        f"  import self time by cause (ms; total {prof['importtime_total_ms']:.1f}; stdlib charged to whoever pulled it in):"
    )
    print("   " + ", ".join(f"{c} {ms:.1f}" for c, ms in prof["importtime_by_cause_ms"].items() if ms >= 0.3))


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=8, help="timed runs per variant (default 8)")
    p.add_argument(
        "--warmup", type=int, default=1, help="untimed rounds first: page cache, .pyc files, slurmd state (default 1)"
    )
    p.add_argument(
        "--jitter",
        type=float,
        default=1.0,
        help="untimed random pause (0..S s) before each run, so that no variant keeps one phase of the "
        "scheduler's cycle (default 1.0: the dev cluster's bf_interval; 0 turns it off)",
    )
    p.add_argument("--no-trace", action="store_true", help="no decomposition (no sitecustomize, no site template)")
    p.add_argument("--profile", action="store_true", help="also time the in-job runtime offline, with its imports")
    p.add_argument("--profile-runs", type=int, default=15, help="runs for --profile (default 15)")
    p.add_argument("--variants", help="comma-separated subset of the variants (default: all)")
    p.add_argument("--seed", type=int, default=None, help="seed of the jitter's random pauses")
    p.add_argument(
        "--whatif",
        metavar="PATCHES",
        help="add `hpc_tf slurm what-if` and `hpc_tf mpi what-if`: the same jobs with bench/_whatif.py's "
        "emulated proposals (comma-separated) in the submit process and in the job",
    )
    args = p.parse_args()
    if args.runs < 1 or args.warmup < 0 or args.jitter < 0:
        p.error("--runs must be at least 1, --warmup and --jitter at least 0")
    return args


def main() -> None:
    """Bench, scancel whatever is left of our jobs whatever happens, report."""
    args = parse_args()
    env = cluster_env()
    check_cluster(env, "bench_launch")
    name = job_name("bench-launch")
    trace = not args.no_trace
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    rng = random.Random(seed)
    logs = SlurmLogs(env) if trace else None
    if logs is not None and not logs.available:
        print("bench_launch: Slurm's log files are not readable here: no Slurm events in the decomposition")
    records: list[dict[str, object]] = []
    excl: dict[str, list[float]] = {}
    profile = None
    with tempfile.TemporaryDirectory(prefix="hpc_tf-bench-launch-") as tmp_name:
        tmp = Path(tmp_name)
        runners, jobs = make_runners(tmp, name, trace, args.whatif)
        if args.variants:
            wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
            unknown = [v for v in wanted if v not in runners]
            if unknown:
                raise SystemExit(f"bench_launch: unknown variants {unknown}; known: {list(runners)}")
            runners = {k: runners[k] for k in wanted}
        base_env = dict(env)
        if trace:
            base_env["HPC_TF_TEMPLATE_DIR"] = str(trace_templates(tmp / "templates"))
        done_runs: dict[str, int] = {}

        def run(variant: str) -> float:
            time.sleep(rng.uniform(0, args.jitter))  # untimed: a random phase of the scheduler's cycle
            trace_file = tmp / "traces" / f"{re.sub(r'[^a-z0-9]+', '-', variant)}-{time.monotonic_ns()}.log"
            trace_file.parent.mkdir(exist_ok=True)
            run_env = traced_env(base_env, trace_file) if trace else base_env
            if logs is not None:
                logs.mark()
            try:
                done = runners[variant](run_env)
            finally:
                settle(name, env)
            first = first_line_at(done)
            total = (first - done.submitted_at) * 1000
            done_runs[variant] = done_runs.get(variant, 0) + 1
            if trace and done_runs[variant] > args.warmup:
                events = {**read_trace(trace_file), "t0": done.submitted_at, "first_line": first}
                if logs is not None and done.job_id and not done.job_id.startswith("local"):
                    events.update(logs.events(done.job_id))
                segs = segments(CHAINS[variant], events)
                records.append(
                    {
                        "variant": variant,
                        "total_ms": total,
                        "segments": segs,
                        "events_ms": {
                            k: (v - done.submitted_at) * 1000 for k, v in sorted(events.items(), key=lambda kv: kv[1])
                        },
                    }
                )
                if SCHED_WAIT in segs:
                    excl.setdefault(variant, []).append(total - segs[SCHED_WAIT])
            return total

        try:
            samples, repeated = interleave(list(runners), args.runs, args.warmup, run)
            if args.profile:
                profile = profile_in_job(tmp / "single.json", tmp, env, args.profile_runs)
        finally:
            cancel_all(name, env)
    stats = summarize(samples, "ms")
    rat = ratios(stats)
    excl_stats = summarize(excl, "ms") if excl else {}
    print_table(stats, rat, args.runs, excl_stats)
    dec = decomposition(records)
    if dec:
        print_decomposition(dec, list(runners))
        if logs is not None and logs.scheduler_parameters:
            print(f"\n(SchedulerParameters: {logs.scheduler_parameters}; jitter 0..{args.jitter:g} s, seed {seed})")
    if profile is not None:
        print_profile(profile)
    write_results(
        RESULTS,
        {
            "runs": args.runs,
            "warmup": args.warmup,
            "jitter_s": args.jitter,
            "seed": seed,
            "trace": trace,
            "stats": stats,
            "ratios": rat,
            "without_scheduler_wait": {"stats": excl_stats, "ratios": ratios(excl_stats) if excl_stats else {}},
            "decomposition": dec,
            "samples_ms": samples,
            "records": records,
            "repeated_after_foreign_cancel": repeated,
            "in_job_profile": profile,
            "jobs": jobs,
        },
    )


if __name__ == "__main__":
    main()
