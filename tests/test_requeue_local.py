"""Issue 11 on the local backend (no Slurm): the supervisor plays Slurm's part. It sends the warning
checkpoint_lead_seconds before max_run_duration_seconds, the script saves and exits 75, rank 0's runtime decides and
records, and the supervisor restarts the run in place (same run directory, a fresh time limit); refusals, a script
that ignores the warning, a cancel and a run without requeue_on end as they would on Slurm."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import hpc, make_project, read_status, wait_for, write_config

COUNTER = """
import json, os, sys, time
import hpc_tf, hpc_tf.checkpoint as ckpt
total, obey = int(sys.argv[2]), sys.argv[4] == "yes"
state = ckpt.directory() / "state.json"
step = json.loads(state.read_text())["step"] if state.exists() else 0
start = step
print(f"attempt {ckpt.restart_count()} from step {start}", flush=True)
with open(os.path.join(os.environ["HPC_TF_OUTPUTS_DIR"], "attempts.jsonl"), "a") as f:
    f.write(json.dumps({"restart": ckpt.restart_count(), "from": start}) + "\\n")
while step < total:
    time.sleep(0.25)
    step += 1
    hpc_tf.log("step", step)
    if obey and ckpt.requested():
        state.write_text(json.dumps({"step": step}))
        ckpt.saved(step)
        ckpt.exit_for_requeue()
os.makedirs("outputs", exist_ok=True)
with open("outputs/done.json", "w") as f:
    json.dump({"resumed_from": start, "restart": ckpt.restart_count()}, f)
"""

# A 14 s window whose warning comes after 4 s (checkpoint_lead_seconds is at least 10): each attempt steps ~3 s.
WINDOW = {"max_run_duration_seconds": 14, "checkpoint_lead_seconds": 10}


def config(tmp_path: Path, steps: int, obey: bool = True, **keys: object) -> Path:
    project = make_project(tmp_path / "proj", COUNTER)
    return write_config(
        tmp_path / "c.yaml",
        experiment="rq",
        source_directory=str(project),
        entry_script="train.py",
        script_params={"--steps": steps, "--obey": "yes" if obey else "no"},
        **keys,
    )


def submit(tmp_path: Path, cfg: Path, wait: bool = True) -> Path:
    args = ["submit", str(cfg), "--backend", "local", "--json", "--runs-dir", str(tmp_path / "runs")]
    proc = hpc(*args, *(["--wait"] if wait else []), timeout=120)
    assert "run_dir" in proc.stdout, proc.stderr
    return Path(json.loads(proc.stdout.splitlines()[-1])["run_dir"])


def attempts_logged(run_dir: Path) -> list[dict]:
    path = run_dir / "outputs" / "attempts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_run_longer_than_its_time_limit_checkpoints_and_restarts_in_place(tmp_path: Path) -> None:
    steps = 40  # 10 s of work; a window holds at most 16 steps (4 s): three attempts at least
    run_dir = submit(tmp_path, config(tmp_path, steps, requeue_on=["timeout"], max_restarts=10, **WINDOW))
    status = read_status(run_dir)
    assert (status["state"], status["exit_code"], status["final"]) == ("COMPLETED", 0, True), status
    attempts = status["attempts"]
    assert len(attempts) >= 3 and [a["n"] for a in attempts] == list(range(len(attempts))), attempts
    assert status["restarts"] == len(attempts) - 1
    for k, earlier in enumerate(attempts[:-1], start=1):
        assert earlier["cause"] == "timeout" and earlier["requeue"] == f"requeued after timeout (restart {k})"
        assert earlier["end"] and earlier["checkpoint_step"] and earlier["checkpoint_step"] > 0
    assert attempts[-1]["cause"] == "" and attempts[-1]["end"] is None
    # the same run: one run directory, its id, every attempt's request and requeue in its tasks/
    assert [p.name for p in (tmp_path / "runs" / "rq").iterdir()] == [run_dir.name] == [status["run_id"]]
    for n in range(len(attempts) - 1):
        assert (run_dir / "tasks" / f"checkpoint-request-{n}").exists()
        assert (run_dir / "tasks" / f"requeue-request-{n}").exists()
    assert not (run_dir / "tasks" / f"requeue-request-{len(attempts) - 1}").exists()
    # resumed, never restarted from 0: each attempt starts at the step the previous one saved, no step twice
    logged = attempts_logged(run_dir)
    assert [a["restart"] for a in logged] == list(range(len(attempts)))
    assert [a["from"] for a in logged[1:]] == [a["checkpoint_step"] for a in attempts[:-1]]
    done = json.loads((run_dir / "outputs" / "done.json").read_text())
    assert done == {"resumed_from": attempts[-2]["checkpoint_step"], "restart": len(attempts) - 1}
    metrics = [json.loads(line) for line in (run_dir / "metrics" / "rank-0.jsonl").read_text().splitlines()]
    assert [m["value"] for m in metrics if m["name"] == "step"] == list(range(1, steps + 1))
    out = (run_dir / "logs" / "rank-0.out").read_text()  # appended, attempt after attempt
    assert [f"attempt {a['restart']} from step {a['from']}" in out for a in logged] == [True] * len(logged)
    shown = hpc("status", str(run_dir)).stdout
    assert "attempts:" in shown and "timeout, requeued after timeout (restart 1)" in shown, shown


def test_max_restarts_ends_the_run_with_the_reason(tmp_path: Path) -> None:
    run_dir = submit(tmp_path, config(tmp_path, 200, requeue_on=["timeout"], max_restarts=1, **WINDOW))
    status = read_status(run_dir)
    assert (status["state"], status["exit_code"], status["restarts"]) == ("FAILED", 75, 1), status
    assert status["message"] == "not requeued: max_restarts reached (1 of 1)"
    assert [(a["n"], a["cause"]) for a in status["attempts"]] == [(0, "timeout"), (1, "timeout")]
    assert status["attempts"][1]["requeue"] == "max_restarts reached (1 of 1)"
    assert not (run_dir / "tasks" / "requeue-request-1").exists()


def test_a_lead_at_or_over_the_limit_is_refused(tmp_path: Path) -> None:
    """checkpoint_lead_seconds ≥ max_run_duration_seconds: the warning would come before the script has run at all,
    and every attempt would save and be requeued at once until max_restarts (issue 19): validate and submit refuse
    it, naming both values, and nothing is written."""
    cfg = config(
        tmp_path, 200, requeue_on=["timeout"], max_restarts=2, max_run_duration_seconds=10, checkpoint_lead_seconds=30
    )
    runs = ["--backend", "local", "--runs-dir", str(tmp_path / "runs")]
    for argv in (["validate", str(cfg)], ["submit", str(cfg), *runs]):
        proc = hpc(*argv)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert "checkpoint_lead_seconds" in proc.stderr and "30" in proc.stderr and "10" in proc.stderr, proc.stderr
    assert not (tmp_path / "runs").exists()


def test_a_script_that_ignores_the_warning_is_killed_at_the_limit(tmp_path: Path) -> None:
    cfg = config(
        tmp_path, 200, obey=False, requeue_on=["timeout"], max_run_duration_seconds=11, checkpoint_lead_seconds=10
    )
    run_dir = submit(tmp_path, cfg)
    status = read_status(run_dir)
    assert (status["state"], status["restarts"], len(status["attempts"])) == ("TIMEOUT", 0, 1), status
    assert "SIGUSR2" in status["signals"] and (run_dir / "tasks" / "checkpoint-request-0").exists()
    assert status["attempts"][0]["cause"] == "" and not (run_dir / "tasks" / "requeue-request-0").exists()


def test_without_requeue_on_the_limit_ends_the_run_and_no_warning_is_sent(tmp_path: Path) -> None:
    run_dir = submit(tmp_path, config(tmp_path, 200, max_run_duration_seconds=3))
    status = read_status(run_dir)
    assert (status["state"], status["restarts"], len(status["attempts"])) == ("TIMEOUT", 0, 1), status
    assert "SIGUSR2" not in status["signals"] and "SIGTERM" in status["signals"]
    assert not list((run_dir / "tasks").glob("checkpoint-request-*"))
    assert "attempt 0 from step 0" in (run_dir / "logs" / "rank-0.out").read_text()


def test_a_cancelled_run_is_not_restarted(tmp_path: Path) -> None:
    run_dir = submit(tmp_path, config(tmp_path, 200, requeue_on=["timeout"], **WINDOW), wait=False)
    wait_for(lambda: len(attempts_logged(run_dir)) >= 2, timeout=60)  # the second attempt runs
    assert hpc("cancel", str(run_dir)).returncode == 0
    hpc("wait", str(run_dir), timeout=60)
    status = read_status(run_dir)
    assert (status["state"], status["final"], status["restarts"]) == ("CANCELLED", True, 1), status
    assert len(status["attempts"]) == 2 and len(attempts_logged(run_dir)) == 2
    assert not (run_dir / "tasks" / "requeue-request-1").exists()
