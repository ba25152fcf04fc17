"""Requeue with checkpoints (issue 11): how long a requeued run is away, and how much work a preemption costs.

A. Requeue -> running again: a counter script (0.2 s a step, saved every step, logs {"attempt", "step", "t"}) under
   hpc_tf (requeue_on [preemption], max_restarts 10) gets `scancel --signal=USR2` K times: it saves, exits 75, hpc_tf
   requeues it. Interleaved with a plain `sbatch --requeue --wrap "exec srun python script.py"` requeued by hand
   (`scontrol requeue`). Compared (median ratio): hpc_tf's script exit -> next attempt's first step against plain's
   `scontrol requeue` call -> first step. Split with the cluster's logs (ms): the requeue RPC (slurmd kills the job "DUE
   TO JOB REQUEUE"), slurmctld's "Requeuing" (job ended) and "Allocate"/"Started"; and `scontrol show job`'s StartTime
   (1 s). Expected ~11-14 s, mostly cred_expire (10) + 1.
B. Work lost per preemption: a Keras training modelled on configs/long-training/train.py (--epochs 12 --batch-delay 0.1,
   Checkpointing + MetricsLogger, logs {"attempt", "epoch", "batch", "t"} per batch), no time limit, preempted P times
   by a `high` job pinned to its node (each after the attempt trained >= 1 epoch), then once without notice (`scontrol
   requeue`: no save at the signal). Per interruption: redone batches (attempt n+1's that attempt n had done), their
   seconds (x median batch time), trigger -> resumed first batch, split as in A. Bound: redone <= one epoch's batches.

Usage:  python bench/bench_requeue.py [--requeues 5] [--preemptions 3]
It brings up a dev cluster of its own (scripts/dev-cluster.sh, HPC_TF_CLUSTER_DIR=/var/tmp/hpctf-bench-requeue, port
19940: preemptions and requeues would disturb a test suite on the default one) and takes it down at the end.
Results: bench/results/requeue.json (git-ignored): raw samples, every event's time, medians, status.json's attempts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from _jobs import own_cluster_env

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
CLUSTER = REPO / "scripts" / "dev-cluster.sh"
KNOBS = {"HPC_TF_CLUSTER_DIR": "/var/tmp/hpctf-bench-requeue", "HPC_TF_CLUSTER_PORT": "19940"}

COUNTER = """import json, os, time
T0 = time.time()
import hpc_tf.checkpoint as ckpt
folder = ckpt.directory(); folder.mkdir(parents=True, exist_ok=True)
log, state, attempt = open(folder / "steps.jsonl", "a"), folder / "state.json", ckpt.restart_count()
emit = lambda **r: (log.write(json.dumps({"attempt": attempt, **r}) + "\\n"), log.flush())
emit(event="start", t=T0)
step = json.loads(state.read_text())["step"] if state.exists() else 0
while not (folder / "stop").exists():
    time.sleep(0.2)
    step += 1
    state.with_suffix(".tmp").write_text(json.dumps({"step": step})); os.replace(state.with_suffix(".tmp"), state)
    ckpt.saved(step)
    emit(step=step, t=time.time())
    if ckpt.requested():
        emit(event="exit", t=time.time()); ckpt.exit_for_requeue()
"""
PLAIN = """import json, os, sys, time
T0 = time.time()
log, stop, attempt = open(sys.argv[1], "a"), sys.argv[2], int(os.environ.get("SLURM_RESTART_COUNT") or 0)
emit = lambda **r: (log.write(json.dumps({"attempt": attempt, **r}) + "\\n"), log.flush())
emit(event="start", t=T0)
step = 0
while not os.path.exists(stop):
    time.sleep(0.2)
    step += 1
    emit(step=step, t=time.time())
"""
KERAS = """import argparse, json, os, time
T0 = time.time()
import hpc_tf.checkpoint
hpc_tf.checkpoint.directory().mkdir(parents=True, exist_ok=True)
LOG, ATTEMPT = open(hpc_tf.checkpoint.directory() / "batches.jsonl", "a"), hpc_tf.checkpoint.restart_count()
emit = lambda **r: (LOG.write(json.dumps({"attempt": ATTEMPT, **r}) + "\\n"), LOG.flush())
emit(event="start", t=T0)
from sklearn.datasets import load_digits
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf
from hpc_tf.keras import Checkpointing, MetricsLogger

class BatchLog(tf.keras.callbacks.Callback):  # first in the list: the batch Checkpointing saves at is logged
    def on_epoch_begin(self, epoch, logs=None): self.epoch = epoch
    def on_train_batch_end(self, batch, logs=None): emit(epoch=self.epoch, batch=batch, t=time.time())

class BatchDelay(tf.keras.callbacks.Callback):  # as train.py's: a small model that trains as long as a big one
    def __init__(self, seconds): super().__init__(); self.seconds = seconds
    def on_train_batch_end(self, batch, logs=None): time.sleep(self.seconds)

p = argparse.ArgumentParser()
for flag, kind, default in (("--epochs", int, 30), ("--batch-size", int, 64), ("--batch-delay", float, 0.0)):
    p.add_argument(flag, type=kind, default=default)
args = p.parse_args()
x, y = load_digits(return_X_y=True); x = (x / 16.0).astype("float32")
tf.random.set_seed(0)
model = tf.keras.Sequential([tf.keras.Input(shape=(64,)), tf.keras.layers.Dense(64, activation="relu"),
                             tf.keras.layers.Dense(10, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
try:
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=2,
              callbacks=[BatchLog(), Checkpointing(), MetricsLogger(), BatchDelay(args.batch_delay)])
except SystemExit as e:
    emit(event="exit", code=e.code, t=time.time()); raise
emit(event="done", t=time.time())
"""
BATCHES_PER_EPOCH = math.ceil(1797 / 64)  # scikit-learn's digits, batch size 64


def cluster_env() -> dict[str, str]:
    """Bring up the benchmark's own cluster; its environment (SLURM_CONF, ...) for every command."""
    return own_cluster_env(KNOBS)


def run(argv: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    if proc.returncode != 0:
        sys.exit(f"{argv} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def submit(tmp: Path, name: str, script: str, env: dict[str, str], **keys: Any) -> tuple[Path, str]:
    """`python -m hpc_tf submit` of a project holding `script` as train.py; (run_dir, job_id)."""
    (tmp / name).mkdir()
    (tmp / name / "train.py").write_text(script)
    config = {"experiment": name, "source_directory": str(tmp / name), "entry_script": "train.py", **keys}
    (tmp / f"{name}.yaml").write_text(json.dumps(config))
    info = json.loads(run([PY, "-m", "hpc_tf", "submit", str(tmp / f"{name}.yaml"), "--runs-dir", str(tmp / "runs"),
                           "--json"], env))  # fmt: skip
    return Path(info["run_dir"]), str(info["job_id"])


def records(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if line.endswith("}")]


def wait_until(what: str, check: Callable[[], bool], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"benchmark gave up: no {what} after {timeout:.0f} s")
        time.sleep(0.1)


def of(recs: list[dict[str, Any]], attempt: int, key: str = "step") -> list[dict[str, Any]]:
    return [r for r in recs if r["attempt"] == attempt and key in r]


def logged(log: Path, n: int, at_least: int = 1, key: str = "step") -> Callable[[], bool]:
    """Whether attempt n has logged at least `at_least` records with `key` (for wait_until)."""
    return lambda: len(of(records(log), n, key)) >= at_least


def event(recs: list[dict[str, Any]], attempt: int, name: str) -> float | None:
    return next((r["t"] for r in recs if r["attempt"] == attempt and r.get("event") == name), None)


LOGS = Path(KNOBS["HPC_TF_CLUSTER_DIR"]) / "log"
SLURM_EVENTS = {  # name: (log files, line) with ms times; a requeue RPC shows as the job's kill on its node
    "requeue_rpc": (
        "slurmd-*.log",
        r"\[(\d+)\.\w+\] error: \*\*\* (?:JOB|STEP) \S+ ON \S+ CANCELLED AT \S+ DUE TO JOB REQUEUE",
    ),
    "requeuing": ("slurmctld.log", r"Requeuing JobId=(\d+)$"),  # the job has ended and goes back to the queue
    "allocate": ("slurmctld.log", r"(?:sched: Allocate|sched/backfill: _start_job: Started) JobId=(\d+) "),
}


def slurm_event(name: str, job_id: str, after: float) -> float:
    """The first time after `after` that the cluster's logs show `name` (SLURM_EVENTS) for job_id; nan: none."""
    files, pattern = SLURM_EVENTS[name]
    line = re.compile(r"^\[([0-9T:.-]+)\] " + pattern)
    times = [
        dt.datetime.fromisoformat(m.group(1)).timestamp()  # Slurm logs local time
        for path in LOGS.glob(files)
        for m in map(line.match, path.read_text(errors="replace").splitlines())
        if m and m.group(2) == job_id
    ]
    return min((t for t in times if t > after), default=math.nan)


def start_time(job_id: str, env: dict[str, str]) -> float | None:
    """`scontrol show job -o`'s StartTime (1 s resolution) while the job runs."""
    text = run(["scontrol", "show", "job", "-o", job_id], env)
    m = re.search(r"JobState=RUNNING .* StartTime=(\S+)", text)
    return dt.datetime.fromisoformat(m.group(1)).timestamp() if m else None


def requeue_sample(recs: list[dict[str, Any]], n: int, job: str, trigger: float, env: dict[str, str]) -> dict[str, Any]:
    """The events of one requeue (attempt n -> n+1) and the gaps between them."""
    e: dict[str, Any] = {"trigger": trigger, "last_step": of(recs, n)[-1]["t"], "exit": event(recs, n, "exit")}
    for name in SLURM_EVENTS:
        e[name] = slurm_event(name, job, e.get("requeuing", trigger - 0.5))
    e["StartTime"] = start_time(job, env)
    e["start"], e["first_step"] = event(recs, n + 1, "start"), of(recs, n + 1)[0]["t"]
    ended = e["exit"] or trigger  # hpc_tf: the script's exit; plain: the `scontrol requeue` call
    gaps = {
        "gap_steps": e["first_step"] - e["last_step"],  # last step of n -> first step of n+1
        "ended_to_first": e["first_step"] - ended,
        "trigger_to_first": e["first_step"] - trigger,  # trigger: USR2 (hpc_tf), scontrol requeue (plain)
        "ended_to_requeue_rpc": e["requeue_rpc"] - ended,  # hpc_tf: its records + its scontrol requeue
        "requeue_rpc_to_requeuing": e["requeuing"] - e["requeue_rpc"],  # Slurm ends the job (plain: kills its step)
        "requeuing_to_allocate": e["allocate"] - e["requeuing"],  # Slurm: cred_expire + 1, a scheduling cycle
        "allocate_to_start": e["start"] - e["allocate"],  # batch script, srun, (hpc_tf.job), python
        "rpc_to_first": e["first_step"] - e["requeue_rpc"],
        "ended_to_StartTime_1s": (e["StartTime"] or math.nan) - ended,
    }
    return {"attempt": n, "events": e, "gaps": gaps}


def bench_restart(tmp: Path, env: dict[str, str], k: int, jobs: list[str]) -> dict[str, Any]:
    run_dir, hjob = submit(tmp, "counter", COUNTER, env, requeue_on=["preemption"], max_restarts=10)
    (tmp / "plain").mkdir()
    (tmp / "plain" / "script.py").write_text(PLAIN)
    plog, pstop = tmp / "plain" / "steps.jsonl", tmp / "plain" / "stop"
    pjob = run(["sbatch", "--parsable", "--requeue", "-J", "plain", "-o", str(tmp / "plain" / "slurm-%j.out"),
                "--open-mode=append", "--wrap", f"exec srun {PY} -u {tmp}/plain/script.py {plog} {pstop}"], env).strip()  # fmt: skip
    jobs += [hjob, pjob]
    hlog = run_dir / "checkpoints" / "steps.jsonl"
    out: dict[str, list[dict[str, Any]]] = {"hpc_tf": [], "plain": []}
    for n in range(k):
        for name, log, job in (("hpc_tf", hlog, hjob), ("plain", plog, pjob))[:: 1 if n % 2 == 0 else -1]:
            wait_until(f"5 steps of {name} attempt {n}", logged(log, n, 5))
            trigger = time.time()
            if name == "hpc_tf":
                run(["scancel", "--signal=USR2", job], env)
            else:
                run(["scontrol", "requeue", job], env)
            wait_until(f"first step of {name} attempt {n + 1}", logged(log, n + 1))
            out[name].append(requeue_sample(records(log), n, job, trigger, env))
    (run_dir / "checkpoints" / "stop").touch()
    pstop.touch()
    run([PY, "-m", "hpc_tf", "wait", str(run_dir)], env)
    status = json.loads((run_dir / "status.json").read_text())
    if (status["state"], status["restarts"]) != ("COMPLETED", k):
        sys.exit(f"hpc_tf run ended {status['state']} after {status['restarts']} restarts (expected {k}): {run_dir}")
    med = {name: {g: statistics.median(s["gaps"][g] for s in samples) for g in samples[0]["gaps"]}
           for name, samples in out.items()}  # fmt: skip
    ratio = med["hpc_tf"]["ended_to_first"] / med["plain"]["ended_to_first"]
    return {"samples": out, "medians_s": med, "ratio_ended_to_first": ratio, "attempts": status["attempts"]}


def bench_lost(tmp: Path, env: dict[str, str], p: int, jobs: list[str]) -> dict[str, Any]:
    params = {"--epochs": 12, "--batch-delay": 0.1}
    run_dir, job = submit(tmp, "keras", KERAS, env, script_params=params, requeue_on=["preemption"], max_restarts=10)
    jobs.append(job)
    log = run_dir / "checkpoints" / "batches.jsonl"
    fractions = [round(0.3 * (i + 1) % 1, 2) for i in range(p)] + [0.5]  # where in the attempt's 2nd epoch to cut
    kinds = ["preemption"] * p + ["no notice (scontrol requeue)"]
    cuts: list[dict[str, Any]] = []
    for n, (kind, frac) in enumerate(zip(kinds, fractions, strict=True)):
        target = BATCHES_PER_EPOCH + round(frac * BATCHES_PER_EPOCH)
        wait_until(f"{target} batches of attempt {n}", logged(log, n, target, "batch"), 300)
        trigger = time.time()
        if kind == "preemption":
            node = re.search(r" NodeList=(\S+)", run(["scontrol", "show", "job", "-o", job], env)).group(1)  # type: ignore[union-attr]
            jobs.append(run(["sbatch", "--parsable", "-p", "high", "-w", node, "-c", "2", "-t", "1", "-o", "/dev/null",
                             "--wrap", "sleep 1"], env).strip())  # fmt: skip
        else:
            run(["scontrol", "requeue", job], env)
        wait_until(f"first batch of attempt {n + 1}", logged(log, n + 1, 1, "batch"), 300)
        cuts.append({"attempt": n, "kind": kind, "cut_at_fraction": frac, "trigger": trigger})
    run([PY, "-m", "hpc_tf", "wait", str(run_dir)], env)
    status = json.loads((run_dir / "status.json").read_text())
    recs = records(log)
    if (status["state"], status["restarts"]) != ("COMPLETED", p + 1) or not event(recs, p + 1, "done"):
        sys.exit(f"keras run ended {status['state']} after {status['restarts']} restarts (expected {p + 1}): {run_dir}")
    diffs = [b["t"] - a["t"] for a, b in itertools.pairwise(recs) if "batch" in a and "batch" in b
             and (a["attempt"], a["epoch"]) == (b["attempt"], b["epoch"])]  # fmt: skip
    batch_s = statistics.median(diffs)
    for c in cuts:
        n = c["attempt"]
        done, nxt = of(recs, n, "batch"), of(recs, n + 1, "batch")
        seen = {(r["epoch"], r["batch"]) for r in done}
        redone = sum((r["epoch"], r["batch"]) in seen for r in nxt)
        last, first = done[-1], nxt[0]
        ev = {"trigger": c["trigger"], "exit": event(recs, n, "exit") or math.nan, "start": event(recs, n + 1, "start")}
        for name in SLURM_EVENTS:
            ev[name] = slurm_event(name, job, ev.get("requeuing", c["trigger"] - 0.5))
        c |= {"last_batch": {"epoch": last["epoch"], "batch": last["batch"]},
              "resumed_at": {"epoch": first["epoch"], "batch": first["batch"]},
              "checkpoint_step": status["attempts"][n]["checkpoint_step"],  # epoch * 1e6 + batch of the newest save
              "redone_batches": redone, "redone_s": redone * batch_s, "within_bound": redone <= BATCHES_PER_EPOCH,
              "trigger_to_resumed_first_batch_s": first["t"] - c["trigger"], "gap_s": first["t"] - last["t"],
              "events": ev}  # fmt: skip
        c["split_s"] = {
            "trigger_to_last_batch": last["t"] - c["trigger"],
            "script_exit_to_requeue_rpc": ev["requeue_rpc"] - ev["exit"],  # TF's teardown + hpc_tf
            "requeue_rpc_to_requeuing": ev["requeuing"] - ev["requeue_rpc"],
            "requeuing_to_allocate": ev["allocate"] - ev["requeuing"],
            "allocate_to_script_start": ev["start"] - ev["allocate"],
            "script_start_to_first_batch": first["t"] - ev["start"],  # imports, restore
        }
    pre = [c for c in cuts if c["kind"] == "preemption"]
    med = {k: statistics.median(c[k] for c in pre) for k in ("redone_batches", "redone_s", "trigger_to_resumed_first_batch_s")}  # fmt: skip
    return {"batches_per_epoch": BATCHES_PER_EPOCH, "median_batch_s": batch_s, "interruptions": cuts,
            "preemption_medians": med, "attempts": status["attempts"], "params": params}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requeues", type=int, default=5)
    parser.add_argument("--preemptions", type=int, default=3)
    args = parser.parse_args()
    env = cluster_env()
    jobs: list[str] = []
    with tempfile.TemporaryDirectory(prefix="hpctf-bench-requeue-") as tmp:
        try:
            a = bench_restart(Path(tmp), env, args.requeues, jobs)
            b = bench_lost(Path(tmp), env, args.preemptions, jobs)
        finally:
            subprocess.run(["scancel", *jobs], capture_output=True, env=env)
            subprocess.run([str(CLUSTER), "down"], capture_output=True, env=env)
    print(f"A. requeue -> running again, medians of {args.requeues} (s)")
    print(f"  {'':32} {'hpc_tf':>8} {'plain':>8}")
    for gap in a["medians_s"]["hpc_tf"]:
        print(f"  {gap:32} {a['medians_s']['hpc_tf'][gap]:8.2f} {a['medians_s']['plain'][gap]:8.2f}")
    print(f"  hpc_tf (script exit -> first step) / plain (scontrol requeue -> first step) = {a['ratio_ended_to_first']:.2f}")  # fmt: skip
    print(f"B. work lost per interruption ({b['batches_per_epoch']} batches an epoch, median batch {b['median_batch_s']:.3f} s)")  # fmt: skip
    print(f"  {'kind':30} {'cut at':>8} {'resumed':>8} {'redone':>7} {'redone s':>9} {'<=epoch':>7} {'trigger->1st':>12}")  # fmt: skip
    for c in b["interruptions"]:
        cut, res = c["last_batch"], c["resumed_at"]
        print(f"  {c['kind']:30} {cut['epoch']:>4}/{cut['batch']:<3} {res['epoch']:>4}/{res['batch']:<3} "
              f"{c['redone_batches']:7d} {c['redone_s']:9.2f} {c['within_bound']!s:>7} "
              f"{c['trigger_to_resumed_first_batch_s']:12.2f}")  # fmt: skip
        print("      split (s): " + ", ".join(f"{k} {v:.2f}" for k, v in c["split_s"].items()))
    print("  preemptions, medians: " + ", ".join(f"{k} {v:.2f}" for k, v in b["preemption_medians"].items()))
    out = REPO / "bench" / "results" / "requeue.json"
    out.parent.mkdir(exist_ok=True)
    doc = {"requeues": args.requeues, "preemptions": args.preemptions, "A": a, "B": b}
    out.write_text(json.dumps(json.loads(json.dumps(doc), parse_constant=lambda _: None), indent=1))  # NaN: null
    print(f"results: {out}")


if __name__ == "__main__":
    main()
