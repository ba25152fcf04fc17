"""`hpc_tf.rundir` reading and writing the run directory's records.

Run directories outlive the hpc_tf that wrote them, and status.json has several concurrent writers
(the job, the supervisor, the watcher, the CLI): old files must read, damaged files must fail with
a message naming the file, and every write must be atomic and serialised.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import shutil
import stat
from pathlib import Path
from typing import Callable

import msgspec
import pytest
from filelock import FileLock, Timeout

from hpc_tf.core import transitions
from hpc_tf.core.answers import NotKnown
from hpc_tf.core.records import (
    JOB_SCHEMA,
    STATUS_SCHEMA,
    EnvRequest,
    FirstFailure,
    InJobEnvironment,
    JobRecord,
    RunStatus,
    TaskRecord,
)
from hpc_tf.errors import RunError
from hpc_tf.rundir import RunDir, write_atomic

DATA = Path(__file__).resolve().parent.parent / "data" / "rundir-v0.1"
OLD_COMPLETED = DATA / "digits" / "20261128-021844-123abc"
OLD_FAILED = DATA / "ps-digits" / "20261128-031500-456def"
T0, T1, T2 = "2026-11-28T02:18:44+00:00", "2026-11-28T02:18:45+00:00", "2026-11-28T02:18:50+00:00"

replace = msgspec.structs.replace
Change = Callable[[RunStatus], RunStatus]


@pytest.fixture
def run(tmp_path: Path) -> RunDir:
    path = tmp_path / "runs" / "digits" / "20261128-021844-123abc"
    path.mkdir(parents=True)
    return RunDir(path)


def copied(source: Path, tmp_path: Path) -> RunDir:
    """A fixture run directory copied out of tests/data, so that nothing writes into the repository."""
    target = tmp_path / source.parent.name / source.name
    shutil.copytree(source, target)
    return RunDir(target)


# ---------------------------------------------------------------------------------------------- round trips
FULL_STATUS = RunStatus(
    run_id="20261128-021844-123abc",
    experiment="digits",
    backend="slurm",
    state="FAILED",
    final=True,
    job_id="12_3",
    exit_code=137,
    nodes=["n1", "n2"],
    submit_time=T0,
    start_time=T1,
    end_time=T2,
    signals=["SIGTERM", "SIGKILL"],
    first_failure=FirstFailure(rank=2, role="worker", index=1, host="n2", exit_code=137, time=T2, note="oom"),
    reason="NonZeroExitCode",
    note="a note",
    message="a message",
    restarts=2,
    scheduler_unreachable_since=T1,
    scheduler_error="sacct: timed out",
)
FULL_JOB = JobRecord(
    run_id="20261128-021844-123abc",
    experiment="ps-digits",
    backend="local",
    python="/opt/env/bin/python",
    command=["/opt/env/bin/python", "-u", "train.py", "--flag", "--lr", "0.1"],
    env={"A": "1", "QUOTE": 'it\'s "x"'},
    default_env={"TF_USE_LEGACY_KERAS": "1"},
    metric_patterns={"loss": r"loss: ([0-9.]+)"},
    ntasks=4,
    distributed_backend="ps",
    parameter_server_count=1,
    ps_mode="script",
    evaluator=True,
    use_gpu=True,
    max_run_duration_seconds=60,
    requeue=True,
    environment=InJobEnvironment(
        "/cache/envs",
        EnvRequest(
            "pip",
            ("numpy==2.0", "pandas"),
            "x\n",
            "/usr/bin/python3",
            "3.11.7",
            True,
            ("/wheels",),
            True,
            ("/venv/site",),
        ),
    ),
)
FULL_TASK = TaskRecord(
    rank=3,
    role="ps",
    index=0,
    host="n4",
    port=41000,
    local_rank=1,
    cuda_visible_devices="0,1",
    start_time=T1,
    pid=10,
    child_pid=11,
    end_time=T2,
    exit_code=143,
    stopped_after_chief=True,
)


@pytest.mark.parametrize(
    "status",
    [RunStatus(), FULL_STATUS, transitions.submitted("r", "e", "local", T0)],
    ids=["defaults", "every-field", "submitted"],
)
def test_status_round_trip(run: RunDir, status: RunStatus) -> None:
    run.transition(lambda _: status)
    assert run.read_status() == status


@pytest.mark.parametrize(
    "job",
    [JobRecord(run_id="r", experiment="e", backend="slurm", python="p", command=["p"]), FULL_JOB],
    ids=["minimal", "every-field"],
)
def test_job_round_trip(run: RunDir, job: JobRecord) -> None:
    run.write_job(job)
    assert run.read_job() == job


def test_job_json_is_the_user_s_only(run: RunDir) -> None:
    """job.json holds environment_variables values: nobody else may read it."""
    run.write_job(FULL_JOB)
    assert stat.S_IMODE(run.job_json.stat().st_mode) == 0o600


def test_task_round_trip_in_rank_order(run: RunDir) -> None:
    others = [replace(FULL_TASK, rank=rank) for rank in (10, 0, 2)]
    for record in [FULL_TASK, *others]:
        run.write_task(record)
    assert run.read_tasks() == sorted([FULL_TASK, *others], key=lambda r: r.rank)


def test_a_task_record_being_written_is_skipped(run: RunDir) -> None:
    run.write_task(FULL_TASK)
    run.task_record_path(4).write_text('{"rank": 4, "ro')
    assert run.read_tasks() == [FULL_TASK]


def test_no_tasks_yet(run: RunDir) -> None:
    assert run.read_tasks() == []


def test_a_missing_status_reads_as_pending(run: RunDir) -> None:
    assert run.read_status() == RunStatus(run_id=run.run_id, experiment="digits")


def test_a_missing_job_json_names_it(run: RunDir) -> None:
    with pytest.raises(RunError, match=r"job\.json is missing"):
        run.read_job()


# ---------------------------------------------------------------------------------------------- old files
def test_status_written_by_0_1_completed(tmp_path: Path) -> None:
    assert copied(OLD_COMPLETED, tmp_path).read_status() == RunStatus(
        schema=STATUS_SCHEMA,
        run_id="20261128-021844-123abc",
        experiment="digits",
        backend="slurm",
        state="COMPLETED",
        job_id="3",
        exit_code=0,
        nodes=["n1"],
        submit_time=T0,
        start_time=T1,
        end_time=T2,
        final=True,
        first_failure=None,
    )


def test_status_written_by_0_1_failed_names_the_first_failure(tmp_path: Path) -> None:
    status = copied(OLD_FAILED, tmp_path).read_status()
    assert (status.state, status.final, status.exit_code, status.job_id) == ("FAILED", True, 137, "4")
    assert status.first_failure == FirstFailure(
        rank=2, role="worker", index=0, host="n3", exit_code=137, time="2026-11-28T03:16:08+00:00", note=""
    )
    assert (status.restarts, status.scheduler_unreachable_since, status.scheduler_error) == (0, None, "")


def test_job_written_by_0_1(tmp_path: Path) -> None:
    assert copied(OLD_COMPLETED, tmp_path).read_job() == JobRecord(
        schema=JOB_SCHEMA,
        run_id="20261128-021844-123abc",
        experiment="digits",
        backend="slurm",
        python="/usr/bin/python3",
        environment=None,
        command=["/usr/bin/python3", "-u", "train.py", "--batch-size", "50"],
        metric_patterns={},
        env={},
        default_env={},
        ntasks=1,
        distributed_backend=None,
        parameter_server_count=0,
        ps_mode="managed",
        evaluator=False,
        use_gpu=False,
        max_run_duration_seconds=1800,
        requeue=False,
    )


def test_task_written_by_0_1(tmp_path: Path) -> None:
    assert copied(OLD_COMPLETED, tmp_path).read_tasks() == [
        TaskRecord(
            rank=0,
            role="worker",
            index=0,
            host="n1",
            port=None,
            local_rank=0,
            cuda_visible_devices=None,
            start_time=T1,
            pid=123,
            child_pid=456,
            end_time=T2,
            exit_code=0,
            stopped_after_chief=False,
        )
    ]


def test_an_old_final_status_still_takes_transitions(tmp_path: Path) -> None:
    """The old COMPLETED run is final: a late observation leaves it, and its file, as they were."""
    run = copied(OLD_COMPLETED, tmp_path)
    before = run.status_json.read_bytes()
    status = run.transition(lambda s: transitions.observed(s, NotKnown(), T2))
    assert status.state == "COMPLETED"
    assert run.status_json.read_bytes() == before


def test_a_newer_file_s_unknown_fields_are_ignored(run: RunDir) -> None:
    run.status_json.write_text('{"schema": 99, "run_id": "r", "state": "RUNNING", "from_the_future": {"x": [1]}}')
    assert run.read_status() == RunStatus(schema=99, run_id="r", state="RUNNING")


# ---------------------------------------------------------------------------------------------- damaged files
DAMAGED: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("whitespace", b"  \n"),
    ("truncated", b'{"run_id": "r", "state": "RUNN'),
    ("binary-garbage", bytes(range(256))),
    ("not-utf8", b'{"run_id": "\xff\xfe"}'),
    ("null", b"null"),
    ("list", b"[]"),
    ("a-number", b"3"),
    ("exit-code-text", b'{"run_id": "r", "exit_code": "zero"}'),
    ("final-text", b'{"final": "yes"}'),
    ("nodes-not-a-list", b'{"nodes": "n1"}'),
    ("first-failure-incomplete", b'{"first_failure": {"rank": 1}}'),
]


@pytest.mark.parametrize("data", [d for _, d in DAMAGED], ids=[i for i, _ in DAMAGED])
def test_a_damaged_status_json_is_a_run_error_naming_the_file(run: RunDir, data: bytes) -> None:
    run.status_json.write_bytes(data)
    with pytest.raises(RunError) as caught:
        run.read_status()
    assert str(run.status_json) in str(caught.value)


@pytest.mark.parametrize("data", [d for _, d in DAMAGED], ids=[i for i, _ in DAMAGED])
def test_a_transition_on_a_damaged_status_raises_and_leaves_it(run: RunDir, data: bytes) -> None:
    """A damaged file is reported, not silently replaced by a fresh record that would lose the run's history."""
    run.status_json.write_bytes(data)
    with pytest.raises(RunError, match=r"status\.json"):
        run.transition(lambda s: transitions.queued(s, "1"))
    assert run.status_json.read_bytes() == data


@pytest.mark.parametrize(
    ("name", "data"),
    [("job.json", b"{}"), ("job.json", b'{"run_id": 1}'), ("job.json", b"")],
    ids=["no-required-fields", "wrong-type", "empty"],
)
def test_a_damaged_job_json_names_the_file(run: RunDir, name: str, data: bytes) -> None:
    (run.path / name).write_bytes(data)
    with pytest.raises(RunError, match=name.replace(".", r"\.")):
        run.read_job()


# ---------------------------------------------------------------------------------------------- transition
def test_transition_runs_under_the_lock(run: RunDir) -> None:
    """While a change is being applied, no other writer can take the status lock."""
    seen: list[bool] = []

    def change(status: RunStatus) -> RunStatus:
        try:
            FileLock(str(run.path / ".status.lock"), timeout=0).acquire()
        except Timeout:
            seen.append(True)
        else:
            seen.append(False)
        return transitions.queued(status, "5")

    assert run.transition(change).job_id == "5"
    assert seen == [True]


def test_transition_applies_the_change_to_the_status_on_disk(run: RunDir) -> None:
    run.transition(lambda _: transitions.submitted(run.run_id, "digits", "slurm", T0))
    run.transition(lambda s: transitions.queued(s, "9"))
    new = run.transition(lambda s: transitions.started(s, T1, ["n1"]))
    assert new == run.read_status()
    assert (new.state, new.job_id, new.submit_time, new.start_time) == ("RUNNING", "9", T0, T1)


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s,
        lambda s: replace(s),
        lambda s: transitions.queued(s, "9"),
        lambda s: transitions.failed_first(s, FirstFailure(rank=9, role="ps", index=0, host="x", exit_code=1, time=T2)),
    ],
    ids=["identity", "equal-copy", "same-job-id", "first-failure-already-set"],
)
def test_a_transition_that_changes_nothing_does_not_rewrite(run: RunDir, change: Change) -> None:
    run.transition(lambda _: replace(FULL_STATUS, job_id="9"))
    before = run.status_json.stat()
    os.utime(run.status_json, ns=(before.st_atime_ns, before.st_mtime_ns - 10**9))  # any rewrite would move it
    before = run.status_json.stat()
    run.transition(change)
    after = run.status_json.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_the_first_transition_writes_even_an_unchanged_fresh_status(run: RunDir) -> None:
    """`runs` lists a run only once status.json exists: the claim must write it."""
    run.transition(lambda s: s)
    assert run.status_json.is_file()
    assert run.read_status() == RunStatus(run_id=run.run_id, experiment="digits")


def replace_fields(status: RunStatus, **changes: object) -> RunStatus:
    return replace(status, **changes)


def append_signal(status: RunStatus, entry: str) -> RunStatus:
    return replace(status, signals=[*status.signals, entry])


def leftovers(folder: Path) -> list[str]:
    """Files in a folder other than the records and the lock: a temp file left behind would show here."""
    expected = {"status.json", "job.json", ".status.lock", "tasks"}
    return sorted(p.name for p in folder.iterdir() if p.name not in expected)


def test_writes_leave_no_temporary_files(run: RunDir) -> None:
    for code in range(20):
        run.transition(functools.partial(replace_fields, exit_code=code))
    run.write_job(FULL_JOB)
    run.write_task(FULL_TASK)
    assert leftovers(run.path) == []
    assert sorted(p.name for p in run.tasks_dir.iterdir()) == ["rank-3.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(run: RunDir, monkeypatch: pytest.MonkeyPatch) -> None:
    run.transition(lambda _: FULL_STATUS)
    before = run.status_json.read_bytes()

    def broken(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("hpc_tf.rundir.os.replace", broken)
    with pytest.raises(OSError):
        run.transition(lambda s: replace(s, note="new"))
    assert run.status_json.read_bytes() == before
    assert leftovers(run.path) == []


def test_write_atomic_replaces_the_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    write_atomic(target, "a much longer first content\n")
    write_atomic(target, b"short\n", 0o640)
    assert target.read_bytes() == b"short\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


# ---------------------------------------------------------------------------------------------- concurrency
WRITERS, STEPS = 8, 50


def _append_signals(path: str, writer: int) -> None:
    run = RunDir(path)
    for step in range(STEPS):
        run.transition(functools.partial(append_signal, entry=f"{writer}:{step}"))


def test_concurrent_transitions_lose_no_update(run: RunDir) -> None:
    """8 processes each append 50 entries: a read-modify-write outside the lock would lose some."""
    run.transition(lambda s: s)
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_signals, args=(str(run.path), n)) for n in range(WRITERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0] * WRITERS
    signals = run.read_status().signals
    assert len(signals) == WRITERS * STEPS
    assert sorted(signals) == sorted(f"{n}:{s}" for n in range(WRITERS) for s in range(STEPS))
    for writer in range(WRITERS):  # each writer's own entries stay in its order
        assert [e for e in signals if e.startswith(f"{writer}:")] == [f"{writer}:{s}" for s in range(STEPS)]
    assert leftovers(run.path) == []
