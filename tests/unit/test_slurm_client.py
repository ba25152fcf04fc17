"""The one Slurm client (backends.slurm.SlurmClient) and rank 0's requeue through it.

`scontrol` here is a small executable put first on PATH that answers as Slurm 22.05's does (exit status and
message as recorded on the dev cluster); the cluster test of the same path, with slurmctld stopped for real, is
`tests/test_requeue_faults.py::test_a_requeue_asked_while_the_controller_is_down_…`. A stand-in is used here
for what the real client cannot be made to do on cue: answer only at the third request."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hpc_tf.backends.slurm import SlurmClient
from hpc_tf.core.records import Checkpointing, JobRecord
from hpc_tf.job.context import TaskContext
from hpc_tf.job.requeue import Requeuer
from hpc_tf.rundir import RunDir

DOWN = "slurm_requeue error: Unable to contact slurm controller (connect failure)"
PENDING = "slurm_requeue error: Job is pending execution"


def fake_scontrol(folder: Path, script: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "scontrol"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("exit 0\n", None),
        (f'echo "{PENDING}" >&2; exit 1\n', f"scontrol requeue 42: {PENDING}"),
        (f'echo "{DOWN}" >&2; exit 1\n', f"scontrol requeue 42: {DOWN}"),
        ("exit 3\n", "scontrol requeue 42: exit status 3"),
        ("sleep 5\n", "scontrol did not answer within 0.5 s"),
    ],
    ids=["taken", "refused", "controller-down", "silent-failure", "no-answer"],
)
def test_requeue_says_whether_slurm_took_it(bin_dir: Path, script: str, expected: str | None) -> None:
    fake_scontrol(bin_dir, script)
    assert SlurmClient(1.0).requeue("42", timeout=0.5) == expected


def test_a_missing_client_is_no_answer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert SlurmClient(1.0).requeue("42", timeout=1).startswith("scontrol: ")
    assert SlurmClient(1.0).job_fields("42") == {}
    assert SlurmClient(1.0).node_states(["n1"]) == {}


def requeuer(tmp_path: Path, lead: int) -> Requeuer:
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    job = JobRecord(
        run_id="r",
        experiment="e",
        backend="slurm",
        python="python3",
        command=["train.py"],
        checkpointing=Checkpointing(requeue_on=("preemption",), lead_seconds=lead),
    )
    ctx = TaskContext(
        hostname="n1",
        rank=0,
        local_rank=0,
        ntasks=1,
        local=False,
        nodes=["n1"],
        tasks_per_node=[1],
        job_nodes=["n1"],
        job_id=42,
    )
    r = Requeuer(run, job, ctx, {"SLURM_JOB_ID": "42"}, SlurmClient(1.0))
    r.cause = "preemption"
    return r


def test_a_request_is_asked_again_until_slurm_takes_it(
    bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused twice (the controller restarting), then taken: the third request is the answer."""
    from hpc_tf.job import requeue

    monkeypatch.setattr(requeue, "RETRY_SECONDS", 0.1)
    count = tmp_path / "count"
    fake_scontrol(
        bin_dir,
        f'[ "$1" = requeue ] || exit 1\necho x >> "{count}"\n'
        f'[ "$(wc -l < "{count}")" -ge 3 ] && exit 0\necho "{DOWN}" >&2; exit 1\n',
    )
    assert requeuer(tmp_path, lead=60)._ask_for_next_attempt() is None
    assert len(count.read_text().splitlines()) == 3


def test_a_request_slurm_never_takes_ends_within_the_lead_time(bin_dir: Path, tmp_path: Path) -> None:
    import time

    fake_scontrol(bin_dir, f'echo "{DOWN}" >&2; exit 1\n')
    r = requeuer(tmp_path, lead=14)  # the requests stop 10 s before the lead time is spent
    r.warned_at = time.monotonic()
    said = r._ask_for_next_attempt()
    assert time.monotonic() - r.warned_at < 8
    assert said is not None and said.startswith("Slurm did not take the requeue (")
    assert said.endswith(f"scontrol requeue 42: {DOWN}")


def test_a_request_whose_answer_was_lost_is_known_taken_by_the_restart_count(
    bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request reached slurmctld but its answer did not come back in time: `scontrol show job` shows
    Restarts=1 (past this attempt's 0), so it was taken and is not asked again."""
    from hpc_tf.job import requeue

    monkeypatch.setattr(requeue, "REQUEUE_CALL_SECONDS", 0.5)
    calls = tmp_path / "calls"
    fake_scontrol(
        bin_dir,
        f'echo "$1" >> "{calls}"\n[ "$1" = requeue ] && {{ sleep 5; exit 0; }}\n'
        'echo "JobId=42 JobName=x Restarts=1 JobState=PENDING"\n',
    )
    assert requeuer(tmp_path, lead=60)._ask_for_next_attempt() is None
    assert calls.read_text().split() == ["requeue", "show"]


def test_the_deprecated_exit_still_asks_for_a_requeue() -> None:
    import hpc_tf.checkpoint as ckpt

    with pytest.warns(DeprecationWarning, match="exit_for_requeue"), pytest.raises(SystemExit) as stop:
        ckpt.exit()
    assert stop.value.code == ckpt.REQUEUE_EXIT_CODE == 75
    assert "exit" not in vars(ckpt)  # the builtin is not shadowed inside the module
