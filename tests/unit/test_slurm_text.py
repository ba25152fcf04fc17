"""hpc_tf.backends.slurm_text against real Slurm 22.05 output (tests/data/slurm-22.05, README there)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import pytest

from hpc_tf.backends.slurm_text import (
    SCONTROL_JOB_KEYS,
    base_job_id,
    combine_het_jobs,
    combine_het_states,
    exit_code,
    het_offset,
    parse_sacct,
    parse_scontrol_job,
    parse_scontrol_jobs,
    parse_squeue,
    query_failure,
    scontrol_job_state,
    state_word,
)
from hpc_tf.core.answers import JobState as J

DATA = Path(__file__).resolve().parent.parent / "data" / "slurm-22.05"


def recorded(name: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of the recording `name` (files NAME.rcN.txt and NAME.rcN.stderr)."""
    [out] = DATA.glob(f"{name}.rc*.txt")
    found = re.fullmatch(rf"{re.escape(name)}\.rc(\d+)\.txt", out.name)
    assert found is not None
    err = out.with_suffix(".stderr")
    return int(found.group(1)), out.read_text(), err.read_text() if err.exists() else ""


def all_recordings() -> set[str]:
    return {re.sub(r"\.rc\d+\.(txt|stderr)$", "", p.name) for p in DATA.iterdir() if p.name != "README.md"}


# --- sacct -------------------------------------------------------------------------------------------

SACCT_FINAL = {
    "1": J("TIMEOUT", 0, "None"),
    "2": J("COMPLETED", 0, "None"),
    "3": J("FAILED", 3, "None"),
    "4": J("FAILED", 137, "None"),
    "5": J("NODE_FAIL", 0, "None"),
    "6": J("COMPLETED", 0, "None"),
    "7": J("COMPLETED", 0, "None"),
    "8": J("CANCELLED", 0, "None"),
    "10+0": J("COMPLETED", 0, "None"),
    "10+1": J("COMPLETED", 0, "None"),
    "12+0": J("FAILED", 3, "None"),
    "12+1": J("FAILED", 3, "None"),
    "9_0": J("COMPLETED", 0, "None"),
    "9_1": J("COMPLETED", 0, "None"),
    "9_2": J("COMPLETED", 0, "JobArrayTaskLimit"),
    "9_3": J("COMPLETED", 0, "JobArrayTaskLimit"),
    "15": J("COMPLETED", 0, "None"),
    "16": J("COMPLETED", 0, "None"),
    "17": J("CANCELLED", 0, "JobHeldUser"),
    "18": J("CANCELLED", 0, "DependencyNeverSatisfied"),
    "19": J("CANCELLED", 0, "BeginTime"),
    "20": J("CANCELLED", 0, "ReqNodeNotAvail"),
    "21": J("CANCELLED", 0, "JobHeldUser"),
    "22": J("COMPLETED", 0, "None"),
    "25+0": J("COMPLETED", 0, "None"),
    "25+1": J("COMPLETED", 0, "None"),
    "27": J("CANCELLED", 0, "None"),
    "28": J("CANCELLED", 0, "JobHeldUser"),
}
SACCT_LIVE = {
    "1": J("RUNNING", 0, "None"),
    "2": J("COMPLETED", 0, "None"),
    "3": J("FAILED", 3, "None"),
    "4": J("FAILED", 137, "None"),
    "5": J("NODE_FAIL", 0, "None"),
    "6": J("RUNNING", 0, "None"),
    "7": J("RUNNING", 0, "None"),
    "8": J("RUNNING", 0, "None"),
    "10+0": J("PENDING", 0, "None"),
    "10+1": J("PENDING", 0, "None"),
    "12+0": J("PENDING", 0, "None"),
    "12+1": J("PENDING", 0, "None"),
    "9_0": J("RUNNING", 0, "None"),
    "9_[1-3%2]": J("PENDING", 0, "None"),
    "15": J("PENDING", 0, "None"),
    "16": J("PENDING", 0, "None"),
    "17": J("PENDING", 0, "JobHeldUser"),
    "18": J("PENDING", 0, "DependencyNeverSatisfied"),
    "19": J("PENDING", 0, "BeginTime"),
    "20": J("PENDING", 0, "ReqNodeNotAvail"),
    "21": J("PENDING", 0, "JobHeldUser"),
}
SACCT_CASES = [
    ("sacct-final-all", SACCT_FINAL),
    ("sacct-live-all", SACCT_LIVE),
    ("sacct-cancelled", {"8": J("CANCELLED", 0, "None"), "21": J("CANCELLED", 0, "JobHeldUser")}),
    ("sacct-mixed-known-unknown", {"2": J("COMPLETED", 0, "None"), "3": J("FAILED", 3, "None")}),
    ("sacct-controller-down", {"2": J("COMPLETED", 0, "None"), "3": J("FAILED", 3, "None")}),
    (
        "sacct-array-by-base-id",
        {
            "9_0": J("COMPLETED", 0, "None"),
            "9_1": J("RUNNING", 0, "None"),
            "9_2": J("RUNNING", 0, "JobArrayTaskLimit"),
            "9_[2-3%2]": J("PENDING", 0, "JobArrayTaskLimit"),
        },
    ),
    ("sacct-array-task-by-raw-id", {"9_0": J("RUNNING", 0, "None")}),
    ("sacct-het-by-base-id", {"10+0": J("PENDING", 0, "None"), "10+1": J("PENDING", 0, "None")}),
    ("sacct-het-component-by-raw-id", {"10+1": J("PENDING", 0, "None")}),
    ("sacct-het-completed", {"10+0": J("COMPLETED", 0, "None"), "10+1": J("COMPLETED", 0, "None")}),
    ("sacct-het-failed", {"12+0": J("FAILED", 3, "None"), "12+1": J("FAILED", 3, "None")}),
    ("sacct-het-just-started", {"25": J("PENDING", 0, "None")}),
    ("sacct-het-running", {"25+0": J("RUNNING", 0, "None"), "25+1": J("RUNNING", 0, "None")}),
    ("sacct-het-running-by-component", {"25+1": J("RUNNING", 0, "None")}),
    ("sacct-suspended-requeued", {"27": J("SUSPENDED", 0, "None"), "28": J("REQUEUED", 0, "None")}),
    ("sacct-suspended-requeued-later", {"27": J("SUSPENDED", 0, "None"), "28": J("PENDING", 0, "JobHeldUser")}),
    ("sacct-just-submitted", {}),
    ("sacct-unknown-ids", {}),
    ("sacct-unknown-array-task", {}),
]


@pytest.mark.parametrize(("name", "expected"), SACCT_CASES, ids=[c[0] for c in SACCT_CASES])
def test_parse_sacct(name: str, expected: dict[str, J]) -> None:
    rc, out, err = recorded(name)
    assert (rc, err) == (0, "")
    assert parse_sacct(out) == expected


# --- squeue ------------------------------------------------------------------------------------------


def sq(pairs: str) -> dict[str, J]:
    """`id STATE reason; ...` (reasons may hold spaces) to the dict parse_squeue gives."""
    out = {}
    for item in pairs.split(";"):
        job_id, state, reason = item.strip().split(" ", 2)
        out[job_id] = J(state, None, reason)
    return out


SQUEUE_CASES = [
    (
        "squeue-final-all",
        sq(
            "8 CANCELLED None; 18 CANCELLED DependencyNeverSatisfied; 19 CANCELLED BeginTime;"
            "20 CANCELLED ReqNodeNotAvail, UnavailableNodes:n4; 27 CANCELLED None; 17 CANCELLED JobHeldUser;"
            "28 CANCELLED job requeued in held state; 21 CANCELLED JobHeldUser; 2 COMPLETED None; 6 COMPLETED None;"
            "7 COMPLETED None; 9_3 COMPLETED None; 9_2 COMPLETED None; 9_1 COMPLETED None; 9_0 COMPLETED None;"
            "10+0 COMPLETED None; 10+1 COMPLETED None; 15 COMPLETED None; 16 COMPLETED None; 22 COMPLETED None;"
            "25+0 COMPLETED None; 25+1 COMPLETED None; 3 FAILED NonZeroExitCode; 4 FAILED JobLaunchFailure;"
            "12+0 FAILED NonZeroExitCode; 12+1 FAILED NonZeroExitCode; 5 NODE_FAIL NodeDown; 1 TIMEOUT TimeLimit"
        ),
    ),
    (
        "squeue-live-all",
        sq(
            "2 COMPLETED None; 3 FAILED NonZeroExitCode; 4 FAILED JobLaunchFailure; 5 NODE_FAIL NodeDown;"
            "9_[1-3%2] PENDING Resources; 10+0 PENDING Resources; 10+1 PENDING Resources; 12+0 PENDING Resources;"
            "12+1 PENDING Resources; 15 PENDING Priority; 16 PENDING Priority; 18 PENDING DependencyNeverSatisfied;"
            "19 PENDING BeginTime; 20 PENDING ReqNodeNotAvail, UnavailableNodes:n4; 21 PENDING JobHeldUser;"
            "17 PENDING JobHeldUser; 1 RUNNING None; 6 RUNNING None; 7 RUNNING None; 8 RUNNING None; 9_0 RUNNING None"
        ),
    ),
    ("squeue-cancelled", sq("8 CANCELLED None; 21 CANCELLED JobHeldUser")),
    ("squeue-mixed-known-unknown", sq("2 COMPLETED None; 3 FAILED NonZeroExitCode")),
    ("squeue-accounting-disabled", sq("1 COMPLETED None; 2 FAILED NonZeroExitCode")),
    ("squeue-after-hung-sbatch", sq("3 COMPLETED None")),
    ("squeue-just-submitted", sq("22 PENDING Priority")),
    (
        "squeue-array-by-base-id",
        sq("9_0 COMPLETED None; 9_3 PENDING JobArrayTaskLimit; 9_2 RUNNING None;9_1 RUNNING None"),
    ),
    ("squeue-array-task-by-raw-id", sq("9_0 RUNNING None")),
    ("squeue-het-by-base-id", sq("10+0 PENDING Resources; 10+1 PENDING Resources")),
    ("squeue-het-component-by-raw-id", sq("10+1 PENDING Resources")),
    ("squeue-het-completed", sq("10+0 COMPLETED None; 10+1 COMPLETED None")),
    ("squeue-het-failed", sq("12+0 FAILED NonZeroExitCode; 12+1 FAILED NonZeroExitCode")),
    ("squeue-het-running", sq("25+0 RUNNING None; 25+1 RUNNING None")),
    ("squeue-het-running-by-component", sq("25+0 RUNNING None; 25+1 RUNNING None")),
    ("squeue-suspended-requeued", sq("28 PENDING job requeued in held state; 27 SUSPENDED None")),
    ("squeue-unknown-ids", {}),
    ("squeue-unknown-array-task", {}),
]


@pytest.mark.parametrize(("name", "expected"), SQUEUE_CASES, ids=[c[0] for c in SQUEUE_CASES])
def test_parse_squeue(name: str, expected: dict[str, J]) -> None:
    rc, out, err = recorded(name)
    assert (rc, err) == (0, "")
    assert parse_squeue(out) == expected


# --- scontrol show job -o ----------------------------------------------------------------------------

SCONTROL_CASES = [
    # name, records, index, fields that must come out exactly, the record's JobState
    (
        "scontrol-running-gpu-exclusive",
        1,
        0,
        {
            "JobId": "6",
            "JobName": "gpu",
            "TimeLimit": "00:05:00",
            "OverSubscribe": "NO",
            "TresPerNode": "gres:gpu:1",
            "Command": "(null)",
            "Power": "",
        },
        J("RUNNING", 0, "None"),
    ),
    (
        "scontrol-finished-gpu-exclusive",
        1,
        0,
        {"NumCPUs": "2", "TresPerNode": "gres:gpu:1", "TRES": "cpu=2,node=1,billing=2"},
        J("COMPLETED", 0, "None"),
    ),
    (
        "scontrol-running-spaces",
        1,
        0,
        {
            "JobName": "name with space",
            "WorkDir": "/tmp/rec/out dir",
            "Comment": "a comment Key=Val x",
            "StdOut": "/tmp/rec/out dir/7.out",
            "AllocNode:Sid": "localhost:4323",
        },
        J("RUNNING", 0, "None"),
    ),
    (
        "scontrol-finished-spaces",
        1,
        0,
        {"JobName": "name with space", "Comment": "a comment Key=Val x", "StdErr": "/tmp/rec/out dir/7.out"},
        J("COMPLETED", 0, "None"),
    ),
    (
        "scontrol-pending-array",
        2,
        0,
        {"JobId": "9", "ArrayTaskId": "1-3%2", "NodeList": "", "SchedNodeList": "n2"},
        J("PENDING", 0, "Resources"),
    ),
    ("scontrol-pending-array", 2, 1, {"JobId": "14", "ArrayJobId": "9", "ArrayTaskId": "0"}, J("RUNNING", 0, "None")),
    ("scontrol-array-finished-task", 1, 0, {"JobId": "24", "ArrayTaskId": "2"}, J("COMPLETED", 0, "None")),
    (
        "scontrol-pending-het",
        2,
        1,
        {"JobId": "11", "HetJobId": "10", "HetJobOffset": "1", "HetJobIdSet": "10-11", "Command": "het.sh"},
        J("PENDING", 0, "Resources"),
    ),
    ("scontrol-het-running", 2, 0, {"JobId": "25", "HetJobOffset": "0", "EndTime": "Unknown"}, J("RUNNING", 0, "None")),
    ("scontrol-het-completed", 2, 1, {"JobId": "11", "NumTasks": "2"}, J("COMPLETED", 0, "None")),
    ("scontrol-het-completed-long", 2, 0, {"JobId": "25", "RunTime": "00:01:00"}, J("COMPLETED", 0, "None")),
    ("scontrol-het-failed", 2, 1, {"JobId": "13", "HetJobId": "12"}, J("FAILED", 3, "NonZeroExitCode")),
    ("scontrol-pending-reqnode", 1, 0, {"ReqNodeList": "n4"}, J("PENDING", 0, "ReqNodeNotAvail,_UnavailableNodes:n4")),
    (
        "scontrol-pending-dependency",
        1,
        0,
        {"Dependency": "afterok:3(failed)", "EligibleTime": "Unknown"},
        J("PENDING", 0, "DependencyNeverSatisfied"),
    ),
    ("scontrol-requeue-held", 1, 0, {"Restarts": "1", "Priority": "0"}, J("PENDING", 0, "job_requeued_in_held_state")),
    ("scontrol-timeout", 1, 0, {"ExitCode": "0:15", "TimeLimit": "00:01:00"}, J("TIMEOUT", 143, "TimeLimit")),
    ("scontrol-failed-exit3", 1, 0, {"ExitCode": "3:0"}, J("FAILED", 3, "NonZeroExitCode")),
    ("scontrol-killed-signal9", 1, 0, {"ExitCode": "0:9"}, J("FAILED", 137, "JobLaunchFailure")),
    ("scontrol-completed", 1, 0, {"JobName": "done", "StdIn": "/dev/null"}, J("COMPLETED", 0, "None")),
    ("scontrol-cancelled-running", 1, 0, {"ExitCode": "0:15"}, J("CANCELLED", 143, "None")),
    ("scontrol-cancelled-pending", 1, 0, {"NumTasks": "N/A", "NodeList": ""}, J("CANCELLED", 0, "JobHeldUser")),
    ("scontrol-node-fail", 1, 0, {"Requeue": "0", "NodeList": "n4"}, J("NODE_FAIL", 0, "NodeDown")),
    (
        "scontrol-accounting-disabled-failed",
        1,
        0,
        {"Account": "(null)", "QOS": "(null)"},
        J("FAILED", 3, "NonZeroExitCode"),
    ),
    ("scontrol-after-hung-sbatch", 1, 0, {"JobName": "hung-submit"}, J("COMPLETED", 0, "None")),
]


@pytest.mark.parametrize(
    ("name", "count", "index", "fields", "state"), SCONTROL_CASES, ids=[f"{c[0]}[{c[2]}]" for c in SCONTROL_CASES]
)
def test_parse_scontrol(name: str, count: int, index: int, fields: dict[str, str], state: J) -> None:
    rc, out, err = recorded(name)
    assert (rc, err) == (0, "")
    records = parse_scontrol_jobs(out)
    assert len(records) == count
    assert {k: records[index].get(k) for k in fields} == fields
    assert scontrol_job_state(records[index]) == state
    assert parse_scontrol_job(out) == records[0]


@pytest.mark.parametrize("name", sorted({c[0] for c in SCONTROL_CASES}))
def test_scontrol_keys_are_known_and_lines_round_trip(name: str) -> None:
    """Every key 22.05 printed is a known key, and the pairs joined again give the line (blanks aside)."""
    _, out, _ = recorded(name)
    for line, record in zip(out.splitlines(), parse_scontrol_jobs(out), strict=True):
        assert set(record) <= SCONTROL_JOB_KEYS
        assert " ".join(f"{k}={v}" for k, v in record.items()).split() == line.split()


@pytest.mark.parametrize(
    ("line", "fields"),
    [
        ("JobId=1 Dependency=(null) Y=1 Comment=c Foo=bar", {"Dependency": "(null)", "Y": "1", "Comment": "c Foo=bar"}),
        ("JobId=1 JobName=a b=c Reason=x Y=1 Dependency=(null)", {"JobName": "a b=c", "Reason": "x Y=1"}),
        ("JobId=1 JobName=a UserId=b Comment=says UserId=x", {"JobName": "a", "Comment": "says", "UserId": "x"}),
        ("JobId=1 Command=/p/run.sh --lr=0.1 a WorkDir=/w", {"Command": "/p/run.sh --lr=0.1 a", "WorkDir": "/w"}),
        ("JobId=2 NewKey22=v Power=", {"NewKey22": "v", "Power": ""}),
    ],
)
def test_scontrol_splitting_rule(line: str, fields: dict[str, str]) -> None:
    record = parse_scontrol_job(line)
    assert {k: record.get(k) for k in fields} == fields


def test_scontrol_without_records() -> None:
    assert parse_scontrol_job("") == {}
    assert parse_scontrol_jobs(recorded("scontrol-unknown-array-task")[1]) == []


# --- failed and odd calls ----------------------------------------------------------------------------

FAILURE_CASES = [
    ("sacct-accounting-disabled", "disabled"),
    ("sacct-accounting-disabled-unknown-ids", "disabled"),
    ("sacct-accounting-disabled-controller-down", "disabled"),
    ("squeue-unknown-id", "not_known"),
    ("scontrol-unknown-id", "not_known"),
    ("scontrol-unknown-array-task", "not_known"),
    ("squeue-unknown-ids", "not_known"),
    ("sacct-unknown-ids", "not_known"),
    ("squeue-unknown-array-task", "not_known"),
    ("sacct-unknown-array-task", "not_known"),
    ("sacct-just-submitted", "not_known"),  # the caveat: sacct is silent for a job submitted a moment ago
    ("squeue-malformed-id", "no_answer"),
    ("sacct-malformed-id", "no_answer"),
    ("scontrol-malformed-id", "no_answer"),
    ("squeue-controller-down", "no_answer"),
    ("squeue-single-id-controller-down", "no_answer"),
    ("scontrol-controller-down", "no_answer"),
    ("sbatch-controller-down", "no_answer"),
    ("scancel-controller-down", "no_answer"),
    ("scontrol-ping-controller-down", "no_answer"),
    ("sacct-controller-and-dbd-down", "no_answer"),
    ("squeue-controller-hung", "no_answer"),
    ("scontrol-controller-hung", "no_answer"),
    ("sbatch-controller-hung", "no_answer"),
    ("scontrol-ping-controller-hung", "no_answer"),
]


@pytest.mark.parametrize(("name", "kind"), FAILURE_CASES, ids=[c[0] for c in FAILURE_CASES])
def test_query_failure_recorded(name: str, kind: str) -> None:
    assert query_failure(*recorded(name)) == kind


@pytest.mark.parametrize(
    ("rc", "out", "err", "kind"),
    [
        (1, "", "Slurm accounting storage is disabled\n", "disabled"),
        (1, "", "slurm_load_jobs error: Invalid job id specified\n", "not_known"),
        (2, "", "slurm_load_jobs error: Invalid job id specified\n", "no_answer"),
        (1, "", "slurm_load_jobs error: Invalid job id specified\nsqueue: error: something else\n", "no_answer"),
        (1, "", "scontrol_print_job error: Invalid job id specified\n", "no_answer"),
        (1, "Job 9_99 not found\n", "", "not_known"),
        (1, "Job 9_99 not found\n", "scontrol: error: x\n", "no_answer"),
        (0, "", "", "not_known"),
        (0, "\n", "", "not_known"),
        (0, "", "sacct: error: something\n", "no_answer"),
        (0, "garbage\n", "", "no_answer"),
        (1, "", "slurm_load_jobs error: Socket timed out on send/recv operation\n", "no_answer"),
        (1, "", "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n", "no_answer"),
        (124, "", "", "no_answer"),  # killed by `timeout`
        (-9, "", "", "no_answer"),  # killed by subprocess.run(timeout=...)
        (1, "", "", "no_answer"),
    ],
)
def test_query_failure_rules(rc: int, out: str, err: str, kind: str) -> None:
    assert query_failure(rc, out, err) == kind


# --- small helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("0:0", 0),
        ("3:0", 3),
        ("0:9", 137),
        ("0:15", 143),
        ("1:9", 1),
        ("255:0", 255),
        ("137:0", 137),
        (" 2:0 ", 2),
        ("7", 7),
        ("", None),
        ("N/A", None),
        ("x:1", None),
        ("1:x", None),
        (":9", None),
    ],
)
def test_exit_code(text: str, code: int | None) -> None:
    assert exit_code(text) == code


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("CANCELLED by 0", "CANCELLED"),
        ("CANCELLED by 1000", "CANCELLED"),
        ("RUNNING", "RUNNING"),
        ("COMPLETED+", "COMPLETED"),
        ("", "UNKNOWN"),
    ],
)
def test_state_word(text: str, word: str) -> None:
    assert state_word(text) == word


@pytest.mark.parametrize(
    ("job_id", "base", "offset"),
    [
        ("123", "123", None),
        ("123_4", "123", None),
        ("9_[1-3%2]", "9", None),
        ("9_[2-3%2]", "9", None),
        ("10+0", "10", 0),
        ("10+1", "10", 1),
        ("123.batch", "123", None),
        (" 7 ", "7", None),
    ],
)
def test_base_job_id_and_het_offset(job_id: str, base: str, offset: int | None) -> None:
    assert base_job_id(job_id) == base
    assert het_offset(job_id) == offset


R, P, C = J("RUNNING", 0, "None"), J("PENDING", 0, "Resources"), J("COMPLETED", 0, "None")
F3, F1 = J("FAILED", 3, "NonZeroExitCode"), J("FAILED", 1, "NonZeroExitCode")
T, X, NF = J("TIMEOUT", 143, "TimeLimit"), J("CANCELLED", 143, "None"), J("NODE_FAIL", 0, "NodeDown")


@pytest.mark.parametrize(
    ("components", "combined"),
    [
        ([C, C], C),
        ([P, P], P),
        ([R, P], R),
        ([P, R], R),
        ([F3, R], R),  # not final while a component runs
        ([C, J("COMPLETING", None, "")], J("COMPLETING", None, "")),
        ([C, F3], F3),
        ([F3, F1], F3),  # the first failed component gives the exit code
        ([X, F1], F1),
        ([C, T], T),
        ([X, T], T),
        ([NF, T], NF),
        ([C, X], X),
        ([C], C),
    ],
)
def test_combine_het_states(components: list[J], combined: J) -> None:
    assert combine_het_states(components) == combined


def test_combine_het_states_needs_a_component() -> None:
    with pytest.raises(ValueError):
        combine_het_states([])


@pytest.mark.parametrize(
    ("name", "parse", "expected"),
    [
        ("sacct-het-failed", parse_sacct, {"12": J("FAILED", 3, "None")}),
        ("squeue-het-failed", parse_squeue, {"12": J("FAILED", None, "NonZeroExitCode")}),
        ("sacct-het-running", parse_sacct, {"25": J("RUNNING", 0, "None")}),
        ("squeue-het-by-base-id", parse_squeue, {"10": J("PENDING", None, "Resources")}),
    ],
)
def test_combine_het_jobs_recorded(name: str, parse: Callable[[str], dict[str, J]], expected: dict[str, J]) -> None:
    assert combine_het_jobs(parse(recorded(name)[1])) == expected


def test_combine_het_jobs_keeps_other_ids_and_replaces_a_plain_record() -> None:
    states = parse_sacct(recorded("sacct-final-all")[1])
    combined = combine_het_jobs(states)
    assert combined["10"] == C and combined["12"] == J("FAILED", 3, "None") and combined["9_2"] == states["9_2"]
    assert not any("+" in job_id for job_id in combined)
    assert combine_het_jobs({"25": J("PENDING", 0, "None"), "25+1": R, "25+0": C}) == {"25": R}


# --- every recording is used -------------------------------------------------------------------------


def test_every_recording_is_used() -> None:
    used = {c[0] for c in SACCT_CASES + SQUEUE_CASES + SCONTROL_CASES + FAILURE_CASES}
    assert all_recordings() - used == set()
    assert used - all_recordings() == set()
