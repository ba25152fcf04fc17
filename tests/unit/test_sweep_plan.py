"""Sweeps as job arrays (core.sweep_plan, core.sweep_transitions) and the array parts of Slurm's text
(backends.slurm_text): table-driven, against Slurm 22.05's recorded output where there is one."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import msgspec
import pytest

from hpc_tf.backends.slurm_text import array_limits, expand_array_id, expand_array_states, parse_sacct, parse_squeue
from hpc_tf.core import transitions
from hpc_tf.core.answers import JobState, NotKnown
from hpc_tf.core.plan import LAUNCHER_LOG
from hpc_tf.core.records import ArrayChunk, EarlyStop, RunStatus, SweepRecord
from hpc_tf.core.spec import EstimatorSpec, SlurmOptions
from hpc_tf.sweeps.core import transitions as st
from hpc_tf.sweeps.core.arrays import (
    TRIAL_LAUNCHER_LOG,
    array_plan,
    array_range,
    chunk_size,
    plan_chunks,
    trial_command,
    trial_run_id,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "slurm-22.05"


@pytest.mark.parametrize(
    ("trials", "max_array_size", "max_array_tasks", "expected"),
    [
        (40, 1001, None, [(0, 40)]),
        (1000, 1001, None, [(0, 1000)]),
        (1001, 1001, None, [(0, 1000), (1000, 1)]),
        (25, 11, None, [(0, 10), (10, 10), (20, 5)]),
        (25, None, None, [(0, 25)]),  # not known: Slurm's default 1001
        (25, 1001, 8, [(0, 8), (8, 8), (16, 8), (24, 1)]),  # max_array_tasks caps the count
        (1, 2, None, [(0, 1)]),
        (3, 2, None, [(0, 1), (1, 1), (2, 1)]),  # MaxArraySize 2: index 0 only
    ],
)
def test_chunks(trials: int, max_array_size: int | None, max_array_tasks: int | None, expected: list) -> None:
    chunks = plan_chunks(trials, max_array_size, max_array_tasks)
    assert [(c.offset, c.count) for c in chunks] == expected
    assert sum(c.count for c in chunks) == trials
    assert all(c.count <= chunk_size(max_array_size, max_array_tasks) for c in chunks)


@pytest.mark.parametrize(
    ("count", "throttle", "expected"),
    [(40, 3, "0-39%3"), (40, None, "0-39"), (6, 6, "0-5"), (6, 10, "0-5"), (1, 1, "0"), (10, 1, "0-9%1")],
)
def test_array_range(count: int, throttle: int | None, expected: str) -> None:
    assert array_range(count, throttle) == expected


def test_array_plan_adds_the_array_the_logs_and_the_offset() -> None:
    spec = EstimatorSpec(source_directory="/src", entry_script="train.py", experiment="e")
    plan = array_plan(spec, SlurmOptions(), "/py", "", ArrayChunk(offset=10, count=10, job_id=None), 3, "77")
    directives = dict(plan.directives)
    assert directives["array"] == "0-9%3" and directives["dependency"] == "afterany:77"
    assert directives["output"] == "logs/slurm-%A_%a.out" and "no-requeue" in directives
    assert f"--output={TRIAL_LAUNCHER_LOG}" in plan.launch and f"--output={LAUNCHER_LOG}" not in plan.launch
    assert plan.launch[-6:] == ["-m", "hpc_tf.job", ".", "--trial-offset", "10"][-5:] or plan.launch[-2:] == [
        "--trial-offset",
        "10",
    ]


@pytest.mark.parametrize(
    ("fixed", "sampled", "argv"),
    [
        ({"--epochs": 3, "--lr": 99}, {"--lr": 0.5}, ["--epochs", "3", "--lr", "0.5"]),  # replaced in place
        ({"--epochs": 3}, {"--lr": 0.5, "--bs": 32}, ["--epochs", "3", "--lr", "0.5", "--bs", "32"]),
        ({"--flag": None}, {"--x": "a b"}, ["--flag", "--x", "a b"]),
        ({}, {}, []),
    ],
)
def test_trial_command(fixed: dict, sampled: dict, argv: list[str]) -> None:
    assert trial_command(["py", "-u", "train.py"], fixed, sampled) == ["py", "-u", "train.py", *argv]


@pytest.mark.parametrize(
    ("job_id", "tasks"),
    [
        ("9_[2-3%2]", ["9_2", "9_3"]),
        ("9_[0-4]", ["9_0", "9_1", "9_2", "9_3", "9_4"]),
        ("9_[1,3-4]", ["9_1", "9_3", "9_4"]),
        ("9_[1-7:3]", ["9_1", "9_4", "9_7"]),
        ("9_5", ["9_5"]),
        ("9", ["9"]),
        ("9_[x]", ["9_[x]"]),
    ],
)
def test_expand_array_id(job_id: str, tasks: list[str]) -> None:
    assert expand_array_id(job_id) == tasks


def test_recorded_array_answers_expand_into_tasks() -> None:
    sacct = expand_array_states(parse_sacct((DATA / "sacct-array-by-base-id.rc0.txt").read_text()))
    assert {k: v.state for k, v in sacct.items()} == {
        "9_0": "COMPLETED",
        "9_1": "RUNNING",
        "9_2": "RUNNING",
        "9_3": "PENDING",
    }
    squeue = expand_array_states(parse_squeue((DATA / "squeue-array-by-base-id.rc0.txt").read_text()))
    assert {k: v.state for k, v in squeue.items()} == {
        "9_0": "COMPLETED",
        "9_1": "RUNNING",
        "9_2": "RUNNING",
        "9_3": "PENDING",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("MaxArraySize            = 1001\nMaxJobCount = 10000\n", (1001, None)),
        ("MaxArraySize = 11\nSchedulerParameters     = batch_sched_delay=0,max_array_tasks=5\n", (11, 5)),
        ("SchedulerParameters = (null)\n", (None, None)),
        ("", (None, None)),
    ],
)
def test_array_limits(text: str, expected: tuple) -> None:
    assert array_limits(text) == expected


def record(**kw: object) -> SweepRecord:
    base = dict(
        sweep_id="S",
        experiment="e",
        backend="slurm",
        sampling="random",
        seed=1,
        trial_count=25,
        primary_metric_name="val",
        primary_metric_goal="maximize",
        chunks=[ArrayChunk(offset=0, count=10), ArrayChunk(offset=10, count=10), ArrayChunk(offset=20, count=5)],
    )
    return SweepRecord(**{**base, **kw})  # type: ignore[arg-type]


def test_sweep_transitions() -> None:
    r = st.chunk_queued(record(), 0, "5")
    assert r.state == "SUBMITTING" and st.submitted_ids(r.chunks) == ["5"]
    failed = st.submission_failed(r, "array 2 of 3 ...")
    assert failed.state == "FAILED" and st.submitted_ids(failed.chunks) == ["5"]  # what was queued stays known
    assert st.stopped(failed, "x").state == "CANCELLED"
    done = st.chunk_queued(st.chunk_queued(r, 1, "6"), 2, "7")
    assert done.state == "SUBMITTED"
    assert [st.task_of(done.chunks, i) for i in (0, 9, 10, 24, 25)] == ["5_0", "5_9", "6_0", "7_4", None]
    assert st.task_of(r.chunks, 12) is None  # its array was never queued
    stopped = st.stopped(done, "max_duration_minutes (1) reached")
    assert st.stopped(stopped, "cancelled by the user").stopped == "max_duration_minutes (1) reached"
    assert st.throttled(done, 5).max_concurrent_runs == 5
    deadline = record(deadline="2026-11-28T10:00:00+00:00")
    assert not st.past_deadline(deadline, dt.datetime(2026, 11, 28, 9, 59, tzinfo=dt.timezone.utc))
    assert st.past_deadline(deadline, dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.timezone.utc))


STOP = EarlyStop(rule="bandit", interval=3, decided_at=4, reason="x")
NOW = "2026-11-28T10:00:00+00:00"


@pytest.mark.parametrize(
    ("early", "answer", "state"),
    [
        (True, JobState("COMPLETED", 0), "EARLY_TERMINATED"),
        (False, JobState("COMPLETED", 0), "COMPLETED"),
        (True, JobState("CANCELLED", 143), "CANCELLED"),  # cancelled after the decision: Slurm's word stays
        (True, JobState("FAILED", 1), "FAILED"),
    ],
)
def test_a_trial_its_policy_stopped_ends_early_terminated(early: bool, answer: JobState, state: str) -> None:
    status = transitions.trial_created(trial_run_id("S", 3), "e", "slurm", NOW, "5_3", "S", 3)
    assert (status.sweep, status.trial_index, status.job_id) == ("S", 3, "5_3")
    status = transitions.started(status, NOW, ["n1"])
    if early:
        status = transitions.early_stopped(status, STOP)
    assert transitions.observed(status, answer, NOW).state == state
    ended = transitions.lead_exited(status, 0, NOW, [])
    from_records = transitions.observed(ended, NotKnown("squeue"), NOW)
    assert from_records.state == ("EARLY_TERMINATED" if early else "COMPLETED")
    assert transitions.finalised(ended, "COMPLETED", 0, NOW).state == ("EARLY_TERMINATED" if early else "COMPLETED")


def test_the_first_stop_is_kept() -> None:
    status = transitions.early_stopped(RunStatus(), STOP)
    again = transitions.early_stopped(status, msgspec.structs.replace(STOP, interval=9))
    assert again.early_stop == STOP
