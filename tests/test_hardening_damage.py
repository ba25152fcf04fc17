"""Issue 19, "one damaged record must affect only its own line": each finding as a damage case applied to one run,
one trial or one sweep of a runs directory holding several healthy ones (local backend, no cluster needed).

For every case: the command's exit status, every healthy run listed with its right state, the damaged one marked
with the reason, and no traceback. The healthy runs are submitted once per module (local backend) and copied for
each case; the sweep is made from three of those runs renamed as its trials (sweeps need Slurm to be submitted, but
once every trial has ended `sweep status` asks no scheduler).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import msgspec
import pytest

from hpc_tf.core.records import ArrayChunk, JobRecord, RunStatus, SweepRecord, TrialInfo
from hpc_tf.rundir import RunDir, encode, utc_now
from hpc_tf.sweeps.sweepdir import trial_index

from .conftest import hpc, make_project, write_config

SWEEP = "20261128-120000-000abc"
METRICS = [0.5, 0.9, 0.7]  # trial i's primary metric (maximize): trial 1 is the best
DEEP = "[" * 100_000 + "]" * 100_000


def _submit(cfg: Path, runs: Path) -> Path:
    proc = hpc("submit", str(cfg), "--backend", "local", "--wait", "--json", "--runs-dir", str(runs))
    assert proc.returncode in (0, 3), proc.stderr
    return Path(json.loads(proc.stdout.splitlines()[-1])["run_dir"])


def _make_trial(run: Path, index: int) -> Path:
    """A finished local run turned into trial `index` of SWEEP: renamed, its records say so, its metric logged."""
    trial = run.parent / f"{SWEEP}_{index}"
    run.rename(trial)
    status = msgspec.json.decode((trial / "status.json").read_bytes(), type=RunStatus)
    status = msgspec.structs.replace(status, run_id=trial.name, sweep=SWEEP, trial_index=index)
    (trial / "status.json").write_bytes(encode(status))
    job = msgspec.json.decode((trial / "job.json").read_bytes(), type=JobRecord)
    info = TrialInfo(sweep_id=SWEEP, sweep_dir=str(trial.parent / SWEEP), index=index, hyperparameters={"--lr": index})
    (trial / "job.json").write_bytes(encode(msgspec.structs.replace(job, run_id=trial.name, trial=info)))
    (trial / "metrics").mkdir(exist_ok=True)
    (trial / "metrics" / "primary.jsonl").write_text(json.dumps({"interval": 1, "value": METRICS[index]}) + "\n")
    return trial


def _make_sweep(folder: Path) -> None:
    folder.mkdir()
    now = utc_now()
    record = SweepRecord(
        sweep_id=SWEEP,
        experiment=folder.parent.name,
        backend="slurm",
        sampling="random",
        seed=1,
        trial_count=3,
        primary_metric_name="val",
        primary_metric_goal="maximize",
        chunks=[ArrayChunk(offset=0, count=3, job_id="4242")],
        submit_time=now,
        deadline="2999-01-01T00:00:00+00:00",
        state="SUBMITTED",
    )
    (folder / "sweep.json").write_bytes(encode(record))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A runs directory: runs `ok` (COMPLETED), `failed` (FAILED, exit 3), `victim` (COMPLETED, the one damaged),
    and sweep SWEEP of three COMPLETED trials, all in experiment `dmg`."""
    root = tmp_path_factory.mktemp("damage")
    make_project(root / "src", "print('ok')\n", **{"fail.py": "raise SystemExit(3)\n"})
    ok = write_config(root / "ok.yaml", experiment="dmg", source_directory="src", entry_script="train.py")
    bad = write_config(root / "bad.yaml", experiment="dmg", source_directory="src", entry_script="fail.py")
    runs = root / "runs"
    names = {"ok": _submit(ok, runs), "failed": _submit(bad, runs), "victim": _submit(ok, runs)}
    for i in range(3):
        _make_trial(_submit(ok, runs), i)
    _make_sweep(runs / "dmg" / SWEEP)
    return {"runs": runs, **{key: path.name for key, path in names.items()}}


@pytest.fixture
def runs(template: dict[str, object], tmp_path: Path) -> Path:
    """A fresh copy of the template's runs directory for one case."""
    copy = tmp_path / "runs"
    shutil.copytree(str(template["runs"]), copy, symlinks=True)
    return copy


def _healthy_rows(template: dict[str, object]) -> dict[str, str]:
    return {str(template["ok"]): "COMPLETED", str(template["failed"]): "FAILED"}


def _edit_status(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _replace_with_fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _replace_with_dir(path: Path) -> None:
    path.unlink()
    path.mkdir()


# ---------------------------------------------------------------------------------------------- a run's status.json
RUN_DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    # finding → (damage to the victim's status.json, words of the reason)
    "start-time-without-timezone": (
        lambda p: _edit_status(p, lambda d: d.update(start_time="2026-11-28T12:00:00")),
        "start_time '2026-11-28T12:00:00' has no time zone",
    ),
    "start-time-not-a-timestamp": (lambda p: _edit_status(p, lambda d: d.update(start_time="yesterday")), "start_time"),
    "timestamp-out-of-range": (
        lambda p: _edit_status(p, lambda d: d.update(start_time="0001-01-01T00:00:00+23:59")),
        "is out of range",
    ),
    "missing-backend-not-final": (
        lambda p: _edit_status(p, lambda d: (d.pop("backend"), d.update(final=False))),
        "backend '' is not one of slurm, local",
    ),
    "exit-code-out-of-range": (lambda p: _edit_status(p, lambda d: d.update(exit_code=10**30)), "exit_code"),
    "nested-100000-deep": (
        lambda p: p.write_text('{"state": "COMPLETED", "extra": ' + DEEP + "}"),
        "nested too deeply",
    ),
    # As root, a chmod-000 folder is still readable: a FIFO (which would block a plain read forever) and a
    # directory reproduce the unreadable-file path here; test_a_run_folder_of_another_user does mode 000 itself.
    "status-json-is-a-fifo": (_replace_with_fifo, "not a regular file (a FIFO)"),
    "status-json-is-a-directory": (_replace_with_dir, "not a regular file (a directory)"),
}


@pytest.mark.parametrize("case", sorted(RUN_DAMAGE))
def test_a_damaged_run_is_marked_and_the_others_are_listed(template: dict, runs: Path, case: str) -> None:
    """`runs` exits 0, lists the others with their states and the victim DAMAGED with the reason; `status` and
    `wait` of the victim exit 1 naming it. The unreadable-file cases use a FIFO and a directory in place of
    status.json: the tests run as root, for whom a chmod-000 folder is still readable (the mode-000 case itself,
    with root's bypass dropped, is test_a_run_folder_of_another_user)."""
    damage, words = RUN_DAMAGE[case]
    victim = runs / "dmg" / str(template["victim"])
    damage(victim / "status.json")
    proc = hpc("runs", "--runs-dir", str(runs), "--json", timeout=60)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    rows = {r["run_id"]: r for r in json.loads(proc.stdout)}
    assert {k: rows[k]["state"] for k in _healthy_rows(template)} == _healthy_rows(template)
    assert [rows[f"{SWEEP}_{i}"]["state"] for i in range(3)] == ["COMPLETED"] * 3
    assert rows[victim.name]["state"] == "DAMAGED" and words in rows[victim.name]["message"]
    text = hpc("runs", "--runs-dir", str(runs), timeout=60)
    assert text.returncode == 0 and "Traceback" not in text.stderr
    assert words in text.stderr and str(victim) in text.stderr
    assert all(name in text.stdout for name in _healthy_rows(template))
    for command in ("status", "wait"):
        proc = hpc(command, str(victim), "--json", timeout=60)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, (command, proc.stderr)
        assert words in json.loads(proc.stdout.splitlines()[-1])["error"]
    assert hpc("status", str(runs / "dmg" / str(template["ok"]))).returncode == 0


def test_a_run_folder_of_another_user(template: dict, runs: Path) -> None:
    """chmod 000, read by a process without CAP_DAC_OVERRIDE (root's permission bypass dropped with setpriv, as
    another user would be): the run is DAMAGED "Permission denied", the others are listed."""
    assert shutil.which("setpriv"), "setpriv (util-linux) is needed to drop root's permission bypass"
    victim = runs / "dmg" / str(template["victim"])
    victim.chmod(0)
    hidden = runs / "hidden"  # a whole experiment folder: its runs cannot be seen, which `runs` says
    hidden.mkdir(mode=0)
    try:
        drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        argv = [*drop, sys.executable, "-m", "hpc_tf", "runs", "--runs-dir", str(runs), "--json"]
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        rows = {r["run_id"]: r for r in json.loads(proc.stdout)}
        assert {k: rows[k]["state"] for k in _healthy_rows(template)} == _healthy_rows(template)
        assert rows[victim.name]["state"] == "DAMAGED" and "Permission denied" in rows[victim.name]["message"]
        assert f"cannot list the runs in {hidden}: Permission denied" in proc.stderr
        status = subprocess.run([*argv[:-4], "status", str(victim)], capture_output=True, text=True, env=env)
        assert status.returncode == 1 and "Permission denied" in status.stderr and "Traceback" not in status.stderr
    finally:
        victim.chmod(0o755)
        hidden.chmod(0o755)


# ---------------------------------------------------------------------------------------------- sweeps
def _trial(runs: Path, index: int) -> Path:
    return runs / "dmg" / f"{SWEEP}_{index}"


def _sweep_json(runs: Path) -> Path:
    return runs / "dmg" / SWEEP / "sweep.json"


def _metric_line(runs: Path, text: str) -> None:
    (_trial(runs, 1) / "metrics" / "primary.jsonl").write_text('{"interval": 1, "value": ' + text + "}\n")


SWEEP_DAMAGE: dict[str, tuple[Callable[[Path], None], str, str]] = {
    # finding → (damage, where the reason shows: "trial" (trial 1's) or "sweep", words of the reason)
    "trial-start-time-without-timezone": (
        lambda r: _edit_status(_trial(r, 1) / "status.json", lambda d: d.update(start_time="2026-11-28T12:00:00")),
        "trial",
        "has no time zone",
    ),
    "trial-status-json-is-a-fifo": (lambda r: _replace_with_fifo(_trial(r, 1) / "status.json"), "trial", "a FIFO"),
    "metric-huge-integer": (lambda r: _metric_line(r, "1" + "0" * 400), "trial", "too large for a float"),
    "metric-5000-digits": (lambda r: _metric_line(r, "9" * 5000), "trial", "too long to read"),
    "metric-nested-100000-deep": (lambda r: _metric_line(r, DEEP), "trial", "nested too deeply"),
    "metrics-file-is-a-fifo": (
        lambda r: _replace_with_fifo(_trial(r, 1) / "metrics" / "primary.jsonl"),
        "trial",
        "a FIFO",
    ),
    "deadline-not-a-timestamp": (
        lambda r: _edit_status(_sweep_json(r), lambda d: d.update(deadline="next tuesday")),
        "sweep",
        "deadline 'next tuesday' is not an ISO 8601 timestamp",
    ),
    "deadline-without-timezone": (
        lambda r: _edit_status(_sweep_json(r), lambda d: d.update(deadline="2000-01-01T00:00:00")),
        "sweep",
        "has no time zone",
    ),
    "stray-superscript-two-folder": (
        lambda r: (r / "dmg" / f"{SWEEP}_²").mkdir(),
        "sweep",
        "named like a trial of this sweep but is none",
    ),
    "stray-leading-zero-folder": (lambda r: (r / "dmg" / f"{SWEEP}_01").mkdir(), "sweep", "named like a trial"),
    "huge-trial-count": (
        lambda r: _edit_status(_sweep_json(r), lambda d: d.update(trial_count=10**12)),
        "sweep",
        "trial_count 1000000000000 is not what its arrays hold (3)",
    ),
    "huge-trial-count-and-arrays": (
        lambda r: _edit_status(
            _sweep_json(r), lambda d: d.update(trial_count=10**12, chunks=[{"offset": 0, "count": 10**12}])
        ),
        "sweep",
        "trial_count 1000000000000 is not possible",
    ),
}


@pytest.mark.parametrize("case", sorted(SWEEP_DAMAGE))
def test_a_damaged_trial_or_sweep_record_is_marked_and_the_rest_shown(template: dict, runs: Path, case: str) -> None:
    damage, where, words = SWEEP_DAMAGE[case]
    damage(runs)
    start = time.monotonic()
    proc = hpc("sweep", "status", SWEEP, "--runs-dir", str(runs), "--json", timeout=60)
    assert time.monotonic() - start < 30  # nothing allocated from a count read from disk
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    status = json.loads(proc.stdout)
    trials = {t["index"]: t for t in status["trials"]}
    assert sorted(trials) == [0, 1, 2]
    assert [trials[i]["state"] for i in (0, 2)] == ["COMPLETED", "COMPLETED"]
    assert [trials[i]["metric"] for i in (0, 2)] == [METRICS[0], METRICS[2]]
    assert not trials[0]["damaged"] and not trials[2]["damaged"]
    if where == "trial":
        assert words in trials[1]["damaged"] and trials[1]["state"] in ("DAMAGED", "COMPLETED")
        assert trials[1]["metric"] is None or trials[1]["state"] == "DAMAGED"
    else:
        assert any(words in text for text in status["damaged"]), status["damaged"]
        assert trials[1]["state"] == "COMPLETED" and not trials[1]["damaged"]
    assert words in proc.stderr  # every reason on stderr too
    text = hpc("sweep", "status", SWEEP, "--runs-dir", str(runs), timeout=60)
    assert text.returncode == 0 and "Traceback" not in text.stderr and words in text.stderr
    assert "DAMAGED" in text.stdout or where == "sweep"
    best = hpc("sweep", "best", SWEEP, "--runs-dir", str(runs), "--json", timeout=60)
    assert best.returncode == 0 and "Traceback" not in best.stderr, best.stderr
    # a damaged trial is left out of `best` (what it logged or how it ended is not known)
    assert json.loads(best.stdout)["index"] == (2 if where == "trial" else 1)
    wait = hpc("sweep", "wait", SWEEP, "--runs-dir", str(runs), "--timeout", "30", timeout=60)
    assert wait.returncode == 0 and "Traceback" not in wait.stderr and words in wait.stderr, wait.stderr
    listed = hpc("runs", "--runs-dir", str(runs), "--json", timeout=60)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr
    rows = {r["run_id"]: r["state"] for r in json.loads(listed.stdout)}
    assert {k: rows[k] for k in _healthy_rows(template)} == _healthy_rows(template)


def test_a_sweep_goal_that_is_neither_is_an_error_for_best_only(runs: Path) -> None:
    _edit_status(_sweep_json(runs), lambda d: d.update(primary_metric_goal="biggest"))
    status = hpc("sweep", "status", SWEEP, "--runs-dir", str(runs), "--json")
    assert status.returncode == 0 and "primary_metric_goal 'biggest'" in " ".join(json.loads(status.stdout)["damaged"])
    best = hpc("sweep", "best", SWEEP, "--runs-dir", str(runs))
    assert best.returncode == 1 and "biggest" in best.stderr and "Traceback" not in best.stderr


def test_trial_numbers_are_ascii_digits_without_leading_zeros() -> None:
    assert [trial_index(SWEEP, f"{SWEEP}_{t}") for t in ("0", "7", "12")] == [0, 7, 12]
    assert [trial_index(SWEEP, f"{SWEEP}_{t}") for t in ("²", "٣", "07", "", "x", "1" * 20)] == [None] * 6
    assert trial_index(SWEEP, "other_1") is None


# ---------------------------------------------------------------------------------------------- the smaller findings
def test_a_corrupt_environment_record_is_listed_damaged(tmp_path: Path) -> None:
    cache = tmp_path / "envs"
    request = {"kind": "pip", "packages": ["six"]}
    for key, text in {
        "good": json.dumps({"key": "good", "path": "x", "tool": "pip", "request": request}),
        "corrupt": "{not json",
        "elsewhere": json.dumps({"key": "../../victim", "tool": "pip", "request": request}),
        "deep": '{"key": "deep", "x": ' + DEEP + "}",
    }.items():
        (cache / key).mkdir(parents=True)
        (cache / key / ".hpc_tf-env.json").write_text(text)
    env = {"HPC_TF_ENV_CACHE": str(cache)}
    proc = hpc("env", "list", "--json", env=env)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    rows = {r["key"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == {"good", "corrupt", "elsewhere", "deep"}  # named by their folders, never by the record
    assert "damaged" not in rows["good"] and rows["good"]["request"]["packages"] == ["six"]
    assert "damaged" in rows["corrupt"] and "names environment '../../victim'" in rows["elsewhere"]["damaged"]
    assert "nested too deeply" in rows["deep"]["damaged"]
    text = hpc("env", "list", env=env)
    assert text.returncode == 0 and "Traceback" not in text.stderr and "DAMAGED" in text.stdout


def test_a_binary_hpctfignore_is_a_config_error(tmp_path: Path) -> None:
    """submit reads it (the snapshot) and refuses it naming the file; validate does not read it (yet) and must
    not break on it either."""
    make_project(tmp_path / "src", "print('ok')\n")
    (tmp_path / "src" / ".hpctfignore").write_bytes(bytes(range(256)))
    cfg = write_config(tmp_path / "c.yaml", experiment="x", source_directory="src", entry_script="train.py")
    proc = hpc("submit", str(cfg), "--backend", "local", "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert ".hpctfignore: not UTF-8 text" in proc.stderr
    assert not (tmp_path / "runs").exists()
    proc = hpc("validate", str(cfg))
    assert proc.returncode in (0, 2) and "Traceback" not in proc.stderr, proc.stderr


def test_logs_when_a_log_is_a_directory(template: dict, runs: Path) -> None:
    victim = runs / "dmg" / str(template["victim"])
    (victim / "logs" / "rank-0.out").unlink()
    (victim / "logs" / "rank-0.out").mkdir()
    (victim / "logs" / "rank-².out").mkdir()  # a rank number only int() would take
    for extra in ([], ["--all"]):
        proc = hpc("logs", str(victim), *extra)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert "rank-0.out: cannot read it" in proc.stderr
    good = hpc("logs", str(runs / "dmg" / str(template["ok"])))
    assert good.returncode == 0 and good.stdout == "ok\n"


def test_cancel_on_a_finished_run_says_it_ended_and_sends_nothing(template: dict, runs: Path) -> None:
    run = runs / "dmg" / str(template["failed"])
    before = (run / "status.json").read_bytes()
    for extra in ([], ["--json"]):
        proc = hpc("cancel", str(run), *extra)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert "already ended (FAILED" in proc.stderr and "cancellation requested" not in proc.stderr
    assert "already ended (FAILED" in json.loads(proc.stdout)["error"]
    assert (run / "status.json").read_bytes() == before


def test_a_symlinked_experiment_directory_is_refused(tmp_path: Path) -> None:
    """Refused, not followed: a run is only created in a real directory of the runs directory."""
    make_project(tmp_path / "src", "print('ok')\n")
    cfg = write_config(tmp_path / "c.yaml", experiment="planted", source_directory="src", entry_script="train.py")
    runs, elsewhere = tmp_path / "runs", tmp_path / "elsewhere"
    runs.mkdir()
    elsewhere.mkdir()
    (runs / "planted").symlink_to(elsewhere)
    proc = hpc("submit", str(cfg), "--backend", "local", "--runs-dir", str(runs))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "is a symbolic link" in proc.stderr and list(elsewhere.iterdir()) == []
    (runs / "planted").unlink()
    assert hpc("submit", str(cfg), "--backend", "local", "--wait", "--runs-dir", str(runs)).returncode == 0
    assert RunDir(next((runs / "planted").iterdir())).read_status().state == "COMPLETED"
