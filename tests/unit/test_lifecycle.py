"""`core.lifecycle.task_end`: how one task's end becomes the job's outcome.

The job's exit code, which task is blamed, and whether srun's --kill-on-bad-exit ends the step all
follow from this one decision, so each row spells out the whole `TaskEnd`.
"""

from __future__ import annotations

import pytest

from hpc_tf.core.lifecycle import TaskEnd, task_end

SERVER_NOTE = "the TensorFlow server ended before the chief"

CASES: list[tuple[str, dict[str, object], TaskEnd]] = [
    # (id, task_end arguments, expected decision)
    # a sweep trial's rank 0 stopped by the runtime (its policy, on a scraped metric): a clean end, blamed on nobody
    (
        "trial-stopped-by-policy:single",
        dict(rank=0, backend=None, server=False, code=143, stopped=True, signals=[]),
        TaskEnd(0, lead=True),
    ),
    (
        "trial-stopped-by-policy:multiworker",
        dict(rank=0, backend="multiworker", server=False, code=143, stopped=True, signals=[]),
        TaskEnd(0, lead=True, signal_lead_exit=True),
    ),
    (
        "chief-0:ps",
        dict(rank=0, backend="ps", server=False, code=0, stopped=False, signals=[]),
        TaskEnd(0, lead=True, signal_lead_exit=True),
    ),
    (
        "chief-1:ps",
        dict(rank=0, backend="ps", server=False, code=1, stopped=False, signals=[]),
        TaskEnd(1, lead=True, signal_lead_exit=True, first_failure=True),
    ),
    (
        "chief-0:multiworker",
        dict(rank=0, backend="multiworker", server=False, code=0, stopped=False, signals=[]),
        TaskEnd(0, lead=True, signal_lead_exit=True),
    ),
    (
        "chief-1:multiworker",
        dict(rank=0, backend="multiworker", server=False, code=1, stopped=False, signals=[]),
        TaskEnd(1, lead=True, signal_lead_exit=True, first_failure=True),
    ),
    (
        "chief-0:single",
        dict(rank=0, backend=None, server=False, code=0, stopped=False, signals=[]),
        TaskEnd(0, lead=True),
    ),
    # a single-task job has nobody else to blame: its failure is the run's exit code, not a first_failure
    (
        "chief-1:single",
        dict(rank=0, backend=None, server=False, code=1, stopped=False, signals=[]),
        TaskEnd(1, lead=True),
    ),
    (
        "rank-0-1:mpi",
        dict(rank=0, backend="mpi", server=False, code=1, stopped=False, signals=[]),
        TaskEnd(1, lead=True, first_failure=True),
    ),
    (
        "chief-by-signal:ps",
        dict(rank=0, backend="ps", server=False, code=143, stopped=False, signals=["SIGTERM"]),
        TaskEnd(143, lead=True, signal_lead_exit=True),
    ),
    (
        "chief-by-signal:multiworker",
        dict(rank=0, backend="multiworker", server=False, code=137, stopped=False, signals=["SIGTERM", "SIGKILL"]),
        TaskEnd(137, lead=True, signal_lead_exit=True),
    ),
    (
        "worker-dies-first-3",
        dict(rank=1, backend="multiworker", server=False, code=3, stopped=False, signals=[]),
        TaskEnd(3, first_failure=True),
    ),
    (
        "script-ps-worker-dies-first-3",
        dict(rank=2, backend="ps", server=False, code=3, stopped=False, signals=[]),
        TaskEnd(3, first_failure=True),
    ),
    (
        "worker-stopped-after-chief",
        dict(rank=1, backend="ps", server=True, code=143, stopped=True, signals=[]),
        TaskEnd(0),
    ),
    (
        "worker-stopped-after-chief,signalled-too",
        dict(rank=2, backend="multiworker", server=False, code=137, stopped=True, signals=["SIGTERM"]),
        TaskEnd(0),
    ),
    (
        "worker-by-signal",
        dict(rank=1, backend="multiworker", server=False, code=143, stopped=False, signals=["SIGTERM"]),
        TaskEnd(143),
    ),
    (
        "server-by-signal",
        dict(rank=1, backend="ps", server=True, code=143, stopped=False, signals=["SIGTERM"]),
        TaskEnd(143),
    ),
    (
        "server-ends-0:a-failure",
        dict(rank=1, backend="ps", server=True, code=0, stopped=False, signals=[]),
        TaskEnd(1, first_failure=True, note=SERVER_NOTE),
    ),
    (
        "server-ends-137",
        dict(rank=1, backend="ps", server=True, code=137, stopped=False, signals=[]),
        TaskEnd(137, first_failure=True, note=SERVER_NOTE),
    ),
    (
        "non-server-worker-exits-0",
        dict(rank=2, backend="multiworker", server=False, code=0, stopped=False, signals=[]),
        TaskEnd(0),
    ),
    ("script-mode-ps-exits-0", dict(rank=1, backend="ps", server=False, code=0, stopped=False, signals=[]), TaskEnd(0)),
    ("mpi-rank-1-exits-0", dict(rank=1, backend="mpi", server=False, code=0, stopped=False, signals=[]), TaskEnd(0)),
    (
        "mpi-rank-1-saved-on-request:clean",
        dict(
            rank=1, backend="mpi", server=False, code=75, stopped=False, signals=["SIGUSR2"], checkpoint_requested=True
        ),
        TaskEnd(0),
    ),
    (
        "mpi-rank-1-exits-75-unasked:its-code",
        dict(rank=1, backend="mpi", server=False, code=75, stopped=False, signals=[], checkpoint_requested=False),
        TaskEnd(75, first_failure=True),
    ),
    (
        "rank-0-saved-on-request:the-job's-code",
        dict(
            rank=0, backend="mpi", server=False, code=75, stopped=False, signals=["SIGUSR2"], checkpoint_requested=True
        ),
        TaskEnd(75, lead=True),
    ),
]


@pytest.mark.parametrize(("args", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_task_end(args: dict[str, object], expected: TaskEnd) -> None:
    assert task_end(**args) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("code", [0, 1, 3, 137])
@pytest.mark.parametrize("rank", [1, 2, 5])
def test_a_task_stopped_after_the_chief_always_exits_0(rank: int, code: int) -> None:
    """Stopping the others is how a successful job ends: none of them may make srun report a failure."""
    for server in (False, True):
        assert task_end(rank, "ps", server, code, True, ["SIGTERM"]) == TaskEnd(0)


@pytest.mark.parametrize("backend", [None, "mpi", "ps", "multiworker"])
@pytest.mark.parametrize("rank", [0, 1, 3])
def test_a_signalled_task_is_never_the_first_failure(rank: int, backend: str | None) -> None:
    """Cancel, the time limit or another task's failure signal a task: it is a victim, not the cause."""
    end = task_end(rank, backend, rank > 0 and backend == "ps", 143, False, ["SIGTERM"])
    assert not end.first_failure
    assert end.exit_code == 143


@pytest.mark.parametrize("code", [1, 2, 3, 137, 255])
def test_a_failing_non_chief_exits_non_zero(code: int) -> None:
    """srun --kill-on-bad-exit only ends the step when the first failure's exit code is non-zero."""
    for server in (False, True):
        end = task_end(1, "multiworker", server, code, False, [])
        assert end.first_failure and end.exit_code == code
