"""What bench_launch.py and bench_horovod.py share: running real jobs, hpc_tf's way and by hand.

Both compare a job submitted with `hpc_tf submit --wait --json` against the same job written as a
plain sbatch script, so both need the same pieces: the cluster's environment, a project directory
hpc_tf can snapshot, a runner per kind of job that returns when the job has ended, a wait until the
cluster has let go of the nodes (so a job never starts late because the previous one is still
completing), one scancel by job name at the end, and the same statistics and result files.

Every job of one benchmark run carries one job name, unique to the process (`bench-launch-<pid>`):
`scancel --name` then reaches exactly our jobs, including one whose id we never learned (a submit
process killed by a timeout), and never the test suite's or anyone else's.
"""

from __future__ import annotations

import datetime as _dt
import glob
import hashlib
import itertools
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cli import cluster_env  # noqa: F401  (re-exported: one rule for the environment)

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
PY = sys.executable  # the real interpreter, not a pyenv shim: shims add their own start-up

RETRIES = 2  # per run, for jobs someone else cancelled (see Cancelled)

# Slurm job states in which the job still holds (or waits for) its nodes.
ACTIVE_STATES = {
    "PENDING",
    "CONFIGURING",
    "RUNNING",
    "COMPLETING",
    "SUSPENDED",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
    "UNKNOWN",
}  # UNKNOWN: scontrol did not answer (see job_state)


def own_cluster_env(knobs: Mapping[str, str]) -> dict[str, str]:
    """Bring up a benchmark's own dev cluster (HPC_TF_CLUSTER_DIR/PORT/… in `knobs`, so a test suite on the default
    one is not disturbed); its environment (SLURM_CONF, ...) for every command."""
    # .pyc files as users have them (a session's PYTHONDONTWRITEBYTECODE would compile hpc_tf at every start)
    env = {k: v for k, v in os.environ.items() if k not in ("SLURM_CONF", "PYTHONDONTWRITEBYTECODE")} | dict(knobs)
    cluster = str(REPO / "scripts" / "dev-cluster.sh")
    subprocess.run([cluster, "up"], check=True, env=env, stdout=subprocess.DEVNULL)
    text = subprocess.run([cluster, "env"], capture_output=True, text=True, env=env, check=True).stdout
    for line in text.splitlines():
        for item in line.removeprefix("export ").split():
            if "=" in item:
                key, value = item.split("=", 1)
                env[key] = value
    env["PYTHONPATH"] = str(REPO)
    return env


class Cancelled(RuntimeError):
    """A job of ours ended CANCELLED without our asking: someone else's scancel.

    On a shared dev cluster that happens: the test suite's per-test fixture cancels every job
    that appeared in squeue during the test, ours included. Such a run has no timing and says
    nothing about the launcher, so interleave() runs it again (RETRIES times at most). Also raised
    for a run whose task found its job-id-derived port taken by another cluster's job.
    """


@dataclass(frozen=True)
class Finished:
    """A job that has ended: when its submission started (time.time()), its id, its output file
    (and, for hpc_tf runs, the run directory)."""

    submitted_at: float
    job_id: str
    output: Path
    state: str
    run_dir: Path | None = None


def check_cluster(env: Mapping[str, str], prog: str) -> None:
    """Fail early with a hint rather than timing a cluster that is down."""
    if subprocess.run(["scontrol", "ping"], env=dict(env), capture_output=True).returncode != 0:
        sys.exit(f"{prog}: Slurm does not answer; run `scripts/dev-cluster.sh up` first")


def job_name(prefix: str) -> str:
    """One name for every job of this benchmark process: scancel --name reaches ours only."""
    return f"{prefix}-{os.getpid()}"


def write_config(path: Path, config: Mapping[str, object]) -> Path:
    """hpc_tf reads YAML; JSON is YAML, and needs no third-party writer."""
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def tail(path: Path, lines: int = 15) -> str:
    """The end of a log file for an error message, or a note that it is missing."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"({path} does not exist)"


def run_hpc_tf(
    config: Path,
    backend: str,
    runs_dir: Path,
    env: Mapping[str, str],
    timeout: float,
    command: list[str] | None = None,
) -> Finished:
    """`hpc_tf submit --wait --json`; the clock starts right before the submit process does.

    Returns rank 0's stdout (logs/rank-0.out) as the output. A run that does not end COMPLETED
    aborts the benchmark with hpc_tf's stderr: a failed job has no meaningful timing. `command`
    replaces `python -m hpc_tf` (bench_launch.py --whatif: `python bench/_whatif.py PATCHES hpc_tf`).
    """
    argv = [
        *(command or [PY, "-m", "hpc_tf"]),
        "submit",
        str(config),
        "--backend",
        backend,
        "--runs-dir",
        str(runs_dir),
        "--json",
        "--wait",
    ]
    submitted_at = time.time()
    proc = subprocess.run(argv, cwd=REPO, env=dict(env), capture_output=True, text=True, timeout=timeout)
    lines = proc.stdout.strip().splitlines()
    info = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    if info.get("state") == "CANCELLED":
        raise Cancelled(f"hpc_tf run {info.get('run_id')} (job {info.get('job_id')})")
    if "is already in use on" in proc.stderr:
        # ps/multiworker ports derive from the job id; on a machine running several dev clusters (one network
        # namespace, job ids counted per cluster) another cluster's job can hold the block: not hpc_tf's doing
        raise Cancelled(f"hpc_tf run {info.get('run_id')} (job {info.get('job_id')}) met a port held by another job")
    if proc.returncode != 0 or info.get("state") != "COMPLETED":
        raise RuntimeError(
            f"hpc_tf submit exited {proc.returncode} (state {info.get('state')}): "
            f"{shlex.join(argv)}\n{proc.stderr.strip()[-3000:]}"
        )
    run_dir = Path(info["run_dir"])
    return Finished(submitted_at, str(info.get("job_id")), run_dir / "logs" / "rank-0.out", info["state"], run_dir)


def job_state(job_id: str, env: Mapping[str, str]) -> str:
    """Slurm's JobState from `scontrol -o show job` (no accounting here).

    GONE once slurmctld has purged the job; UNKNOWN when it did not answer (busy, restarting),
    which callers treat as still active rather than as an end.
    """
    proc = subprocess.run(["scontrol", "-o", "show", "job", job_id], env=dict(env), capture_output=True, text=True)
    for word in proc.stdout.split():
        if word.startswith("JobState="):
            return word.split("=", 1)[1]
    return "GONE" if "Invalid job id" in proc.stderr else "UNKNOWN"


def run_sbatch(script: Path, workdir: Path, marker: str, env: Mapping[str, str], timeout: float) -> Finished:
    """Submit a hand-written script with `sbatch --parsable`; return once the job has ended.

    The clock starts right before the sbatch process does. Until `marker` shows up in the job's
    output file the loop only reads that file (every 0.1 s), asking slurmctld every second just in
    case the job died without it; then it waits for the end by asking slurmctld every 0.5 s.
    The output file is `slurm-<jobid>.out` in workdir (the scripts say `--output=slurm-%j.out`).
    """
    submitted_at = time.time()
    proc = subprocess.run(
        ["sbatch", "--parsable", str(script)], cwd=workdir, env=dict(env), capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"sbatch {script} exited {proc.returncode}: {proc.stderr.strip()}")
    job_id = proc.stdout.strip().split(";")[0]
    output = workdir / f"slurm-{job_id}.out"
    deadline = time.monotonic() + timeout
    state, polls = "PENDING", 0
    while state in ACTIVE_STATES and not _has_marker(output, marker):
        _check_deadline(deadline, job_id)
        time.sleep(0.1)
        polls += 1
        state = job_state(job_id, env) if polls % 10 == 0 else state
    while state in ACTIVE_STATES:
        _check_deadline(deadline, job_id)
        state = job_state(job_id, env)
        time.sleep(0.5 if state in ACTIVE_STATES else 0)
    if state == "CANCELLED":
        raise Cancelled(f"job {job_id} ({script.name})")
    if state not in ("COMPLETED", "GONE"):
        raise RuntimeError(f"job {job_id} ({script.name}) ended {state}; {output}:\n{tail(output)}")
    return Finished(submitted_at, job_id, output, state)


def _has_marker(path: Path, marker: str) -> bool:
    try:
        return marker in path.read_text(errors="replace")
    except FileNotFoundError:
        return False


def _check_deadline(deadline: float, job_id: str) -> None:
    if time.monotonic() > deadline:
        raise TimeoutError(f"job {job_id} still running after the benchmark's timeout")


def settle(name: str, env: Mapping[str, str], timeout: float = 120.0) -> None:
    """Wait until none of our jobs is pending, running or completing: the next one starts clean.

    Not timed. Jobs that others run on the cluster are not waited for: they are the shared
    machine's noise, which the interleaving spreads over every variant alike.
    """
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(
            ["squeue", "-h", "-n", name, "-t", "PD,CF,R,CG,S", "-o", "%i"],
            env=dict(env),
            capture_output=True,
            text=True,
        ).stdout.strip()
        if not out:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"jobs {out.split()} named {name} did not end within {timeout:.0f} s")
        time.sleep(0.2)


def cancel_all(name: str, env: Mapping[str, str]) -> None:
    """scancel every job named `name` that is still there: ours only, whatever went wrong."""
    subprocess.run(["scancel", "--name", name], env=dict(env), capture_output=True, check=False)


def interleave(
    variants: list[str], runs: int, warmup: int, run: Callable[[str], float]
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """`warmup` untimed rounds, then `runs` rounds of every variant, the first variant rotating.

    Load drift on the shared machine then hits every variant alike, so ratios of medians from
    the same benchmark run stay comparable when the absolute numbers move. Returns the samples
    and, per variant, how many runs were repeated because someone else cancelled their job.
    """
    repeated = {name: 0 for name in variants}

    def attempt(name: str) -> float:
        for tries in range(RETRIES + 1):
            try:
                return run(name)
            except Cancelled as exc:
                if tries == RETRIES:
                    raise
                repeated[name] += 1
                print(
                    f"  {name}: {exc} was cancelled, not by us (a test suite's cleanup?); running it again",
                    file=sys.stderr,
                    flush=True,
                )
        raise AssertionError("unreachable")

    for i in range(warmup):
        for name in variants:
            print(f"  warm-up {i + 1}/{warmup}: {name}", file=sys.stderr, flush=True)
            attempt(name)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(runs):
        for name in variants[i % len(variants) :] + variants[: i % len(variants)]:
            value = attempt(name)
            samples[name].append(value)
            print(f"  round {i + 1}/{runs}: {name}: {value:.1f}", file=sys.stderr, flush=True)
    return samples, repeated


def summarize(samples: dict[str, list[float]], unit: str) -> dict[str, dict[str, float]]:
    """Median, min and max per variant (`unit` names the keys: median_ms, min_ms, …)."""
    return {
        name: {f"median_{unit}": statistics.median(v), f"min_{unit}": min(v), f"max_{unit}": max(v), "n": len(v)}
        for name, v in samples.items()
    }


def write_results(path: Path, doc: Mapping[str, object]) -> None:
    """One JSON document with the machine's context first; bench/results/ is git-ignored."""
    path.parent.mkdir(parents=True, exist_ok=True)
    full = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": PY,
        "python_version": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_after": os.getloadavg(),
        "code": git_state(),
        **doc,
    }
    path.write_text(json.dumps(full, indent=2) + "\n")
    print(f"\nwrote {path.relative_to(REPO)}")


def git_state() -> dict[str, object]:
    """Which code was measured: HEAD, and a hash of the uncommitted changes under hpc_tf/ and sbatch_templates/
    (others edit the package while benchmarks run; two results with the same hashes measured the same code)."""

    def git(*args: str) -> str:
        proc = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
        return proc.stdout if proc.returncode == 0 else ""

    diff = git("diff", "HEAD", "--", "hpc_tf", "sbatch_templates")
    untracked = git("ls-files", "--others", "--exclude-standard", "--", "hpc_tf", "sbatch_templates").split()
    digest = hashlib.sha256(diff.encode())
    for name in sorted(untracked):
        try:
            digest.update(name.encode() + (REPO / name).read_bytes())
        except OSError:
            continue
    dirty = bool(diff or untracked)
    return {
        "head": git("rev-parse", "HEAD").strip(),
        "dirty": dirty,
        "changes_sha256": digest.hexdigest()[:16] if dirty else "",
    }


# --------------------------------------------------------------------------- Slurm's own timestamps

_LOG_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})\] (.*)$")
_CTLD_EVENTS = {
    "rpc": re.compile(r"_slurm_rpc_submit_batch_job: JobId=(\d+) "),
    "alloc": re.compile(r"(?:sched: Allocate JobId=|_start_job: Started JobId=)(\d+) "),
}
_SLURMD_EVENTS = {
    "batch": re.compile(r"Launching batch job (\d+) "),
    "step": re.compile(r"launch task StepId=(\d+)\.0 "),
}


@dataclass
class SlurmLogs:
    """Millisecond timestamps from slurmctld's and the slurmds' log files (LogTimeFormat=iso8601_ms, Slurm's
    default), for the events between `sbatch` and a task's start that no job script can time:

      rpc    slurmctld accepted the submission (`_slurm_rpc_submit_batch_job`)
      alloc  the scheduler started the job (`sched: Allocate` or backfill's `_start_job: Started`)
      batch  the batch host's slurmd launches the batch script (`Launching batch job`)
      step   a slurmd receives step 0's launch request (`launch task StepId=J.0`; the earliest node)

    The files are found with `scontrol show config`; `mark()` remembers their sizes so `events()` reads
    only what was logged since. Unreadable logs (a real cluster) give no events, nothing fails.
    """

    env: Mapping[str, str]
    files: dict[str, list[Path]] = field(default_factory=dict)
    offsets: dict[Path, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        out = subprocess.run(["scontrol", "show", "config"], env=dict(self.env), capture_output=True, text=True).stdout
        conf = dict((k.strip(), v.strip()) for k, _, v in (line.partition("=") for line in out.splitlines()) if _)
        ctld = conf.get("SlurmctldLogFile", "")
        slurmd = conf.get("SlurmdLogFile", "")
        self.files = {
            "ctld": [Path(ctld)] if ctld and os.access(ctld, os.R_OK) else [],
            "slurmd": [Path(p) for p in sorted(glob.glob(re.sub(r"%[nh]", "*", slurmd)))] if slurmd else [],
        }
        self.scheduler_parameters = conf.get("SchedulerParameters", "")
        self.available = bool(self.files["ctld"] and self.files["slurmd"])

    def mark(self) -> None:
        for path in self.files["ctld"] + self.files["slurmd"]:
            try:
                self.offsets[path] = path.stat().st_size
            except OSError:
                self.offsets[path] = 0

    def events(self, job_id: str) -> dict[str, float]:
        found: dict[str, float] = {}
        for kind, patterns in (("ctld", _CTLD_EVENTS), ("slurmd", _SLURMD_EVENTS)):
            for path in self.files[kind]:
                for stamp, text in self._new_lines(path):
                    for name, pattern in patterns.items():
                        m = pattern.search(text)
                        if m and m.group(1) == job_id:
                            found[name] = min(found.get(name, stamp), stamp)
        return found

    def _new_lines(self, path: Path) -> list[tuple[float, str]]:
        try:
            with open(path, "rb") as handle:
                handle.seek(self.offsets.get(path, 0))
                data = handle.read().decode("utf-8", "replace")
        except OSError:
            return []
        lines = []
        for line in data.splitlines():
            m = _LOG_STAMP.match(line)
            if m:
                # Slurm logs local time; datetime.timestamp() reads a naive time as local time too
                when = _dt.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").timestamp()
                lines.append((when, m.group(2)))
        return lines


# --------------------------------------------------------------------------- the bench's own trace

TRACE_DIR = BENCH / "_trace"  # sitecustomize.py: Python processes write `site`/`open`/`popen`/`exec` events
TRACE_MARK = "BENCH_TRACE_FILE"


def trace_echo(event: str) -> str:
    """A bash line that appends `<time> <pid> - <event> -` to the trace file: builtins only (no fork)."""
    return f'echo "$EPOCHREALTIME $$ - {event} -" >> "${{{TRACE_MARK}:-/dev/null}}"'


def traced_env(env: Mapping[str, str], trace_file: Path) -> dict[str, str]:
    """The environment of a traced run: sitecustomize on PYTHONPATH, the trace file named."""
    out = dict(env)
    out["PYTHONPATH"] = str(TRACE_DIR) + (os.pathsep + out["PYTHONPATH"] if out.get("PYTHONPATH") else "")
    out[TRACE_MARK] = str(trace_file)
    return out


def _role(cmd: str) -> str:
    # `-m hpc_tf submit`, or bench/_whatif.py's `… PATCHES hpc_tf submit`
    if " hpc_tf submit" in cmd or " -m hpc_tf.__main__ submit" in cmd:
        return "submit"
    if " -m hpc_tf.job" in cmd or ("_whatif.py" in cmd and " hpc_tf.job" in cmd):
        return "job"
    if "local_supervisor" in cmd:
        return "supervisor"
    if "local_tasks" in cmd:
        return "tasks"
    if "first_line" in cmd:
        return "entry"
    return "other"


def read_trace(trace_file: Path) -> dict[str, float]:
    """Rank 0's events from a trace file, named `site:<role>`, `open:<role>`, `spawn:<role>` (Popen or exec,
    also `spawn:<role>><program>`), `script_start`, `before_launch`; the first occurrence of each."""
    events: dict[str, float] = {}
    roles: dict[str, str] = {}
    try:
        lines = trace_file.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return events
    rows = []
    for line in lines:
        parts = line.split(" ", 4)
        if len(parts) < 4:
            continue
        try:
            when = float(parts[0].replace(",", "."))
        except ValueError:
            continue
        rows.append((when, parts[1], parts[2], parts[3], parts[4] if len(parts) > 4 else ""))
    for when, pid, rank, event, detail in sorted(rows):
        if rank not in ("-", "0"):
            continue
        if event == "site":
            roles[pid] = _role(" " + detail)  # an exec'd pid takes the new program's role
            names = [f"site:{roles[pid]}"]
        elif event in ("popen", "exec"):
            role = roles.get(pid, "other")
            names = [f"spawn:{role}>{detail}", f"spawn:{role}"]
        elif event == "open":
            names = [f"open:{roles.get(pid, 'other')}"]
        else:
            names = [event]
        for name in names:
            events.setdefault(name, when)
    return events


def segments(chain: list[tuple[str, str]], events: Mapping[str, float]) -> dict[str, float]:
    """Durations in ms between consecutive events of `chain` ((event, label) pairs) that this run has."""
    present = [(name, label) for name, label in chain if name in events]
    return {label: (events[name] - events[prev]) * 1000 for (prev, _), (name, label) in itertools.pairwise(present)}
