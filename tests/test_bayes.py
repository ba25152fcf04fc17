"""hpc_tf.sweeps.bayesian with real Optuna and real processes: the distribution map, a concurrent sweep that must
beat random search, zombie trials, requeued asks and idempotent tells. No Slurm is needed: each array
task is played by a `python -c` process sharing the sweep directory's journal."""

from __future__ import annotations

import math
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from hpc_tf.sweeps import bayesian as bayes  # noqa: E402
from hpc_tf.sweeps.core.sampling import sample  # noqa: E402
from hpc_tf.sweeps.core.spec import ParamExpr  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
STUDY = "sweep"
SPACE = {
    "--x": ParamExpr(kind="uniform", low=0.0, high=1.0),
    "--y": ParamExpr(kind="quniform", low=0.0, high=5.0, q=0.5),
}
# One array task. argv: sweep_dir seed trial_index mode. free: ask, evaluate f, tell. scripted: the same,
# but each step waits for a line on stdin (so the test fixes the interleaving). hang: ask, then wait.
TASK = """
import sys, time
from pathlib import Path
from hpc_tf.sweeps import bayesian as bayes
from hpc_tf.sweeps.core.spec import ParamExpr
space = {
    "--x": ParamExpr(kind="uniform", low=0.0, high=1.0),
    "--y": ParamExpr(kind="quniform", low=0.0, high=5.0, q=0.5),
}
sweep, seed, index, mode = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if mode == "scripted":
    sys.stdin.readline()
number, params = bayes.ask(sweep, "sweep", space, "maximize", seed, index, lambda i: False)
print(number, flush=True)
if mode == "hang":
    time.sleep(120)
if mode == "scripted":
    sys.stdin.readline()
value = -((params["--x"] - 0.3) ** 2) - (params["--y"] - 2.0) ** 2
bayes.tell(sweep, "sweep", number, value, "COMPLETE")
"""


def f(x: float, y: float) -> float:
    return -((x - 0.3) ** 2) - (y - 2.0) ** 2


def task(sweep: Path, seed: int, index: int, mode: str) -> subprocess.Popen[str]:
    """One array task as a fresh interpreter (its Optuna log goes to a file: a full pipe would block it)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-c", TASK, str(sweep), str(seed), str(index), mode]
    with open(sweep / f"task-{index}.err", "w") as err:
        return subprocess.Popen(args, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True)


def ended(proc: subprocess.Popen[str]) -> None:
    """Wait for a task; a failed one shows its stderr."""
    proc.wait(timeout=60)
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            pipe.close()
    sweep, index = proc.args[3], proc.args[5]  # type: ignore[index]
    assert proc.returncode == 0, (Path(sweep) / f"task-{index}.err").read_text()


def run_free(sweep: Path, seed: int, trials: int, concurrency: int) -> None:
    """Like `--array=0-{trials-1}%{concurrency}`: a task starts as soon as one ends; asks and tells race."""
    pending, running = list(range(trials)), []
    while pending or running:
        while pending and len(running) < concurrency:
            running.append(task(sweep, seed, pending.pop(0), "free"))
        for proc in [p for p in running if p.poll() is not None]:
            running.remove(proc)
            ended(proc)
        time.sleep(0.02)


def run_scripted(sweep: Path, seed: int, trials: int, concurrency: int) -> None:
    """`concurrency` live tasks, in a fixed order: trial k asks once trial k - concurrency has told, so the
    history each ask sees, and with the per-trial seeds the whole sweep, is reproducible."""

    def release(proc: subprocess.Popen[str]) -> None:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()

    started = [task(sweep, seed, i, "scripted") for i in range(min(trials, concurrency + 2))]
    live: list[subprocess.Popen[str]] = []
    for index in range(trials):
        if len(live) == concurrency:
            release(oldest := live.pop(0))
            ended(oldest)
        if index + concurrency + 2 < trials:  # started ahead, so its imports are done when its turn comes
            started.append(task(sweep, seed, index + concurrency + 2, "scripted"))
        proc = started[index]
        release(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() != ""
        live.append(proc)
    for proc in live:
        release(proc)
        ended(proc)


def random_best(seed: int, trials: int) -> float:
    """The best f of random search with the same budget over the same space (hpc_tf's own draws)."""
    rng = random.Random(seed)
    draws = [{flag: sample(expr, rng) for flag, expr in SPACE.items()} for _ in range(trials)]
    return max(f(float(d["--x"]), float(d["--y"])) for d in draws)


# ---------------------------------------------------------------------------------------------- distributions
D = optuna.distributions


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (ParamExpr(kind="choice", values=(16, "a", 2.5, True)), D.CategoricalDistribution([16, "a", 2.5, True])),
        (ParamExpr(kind="randint", upper=5), D.IntDistribution(0, 4)),
        (ParamExpr(kind="uniform", low=-1.0, high=2.0), D.FloatDistribution(-1.0, 2.0)),
        (ParamExpr(kind="quniform", low=0.0, high=5.0, q=0.5), D.FloatDistribution(0.0, 5.0, step=0.5)),
        (ParamExpr(kind="quniform", low=0.05, high=1.0, q=0.1), D.FloatDistribution(0.1, 1.0, step=0.1)),
        (ParamExpr(kind="quniform", low=8.0, high=64.0, q=8.0), D.IntDistribution(8, 64, step=8)),
        (ParamExpr(kind="quniform", low=3.0, high=20.0, q=4.0), D.IntDistribution(4, 20, step=4)),
        (ParamExpr(kind="loguniform", low=-6.0, high=-1.0), D.FloatDistribution(math.exp(-6), math.exp(-1), log=True)),
        (
            ParamExpr(kind="qloguniform", low=0.0, high=5.0, q=1.0),
            D.FloatDistribution(1.0, math.exp(5), log=True),
        ),
    ],
    ids=lambda v: v.text() if isinstance(v, ParamExpr) else "",
)
def test_distribution_map(expr: ParamExpr, expected: object) -> None:
    assert bayes.distributions({"--p": expr}) == {"--p": expected}


@pytest.mark.parametrize("kind", ["normal", "qnormal", "lognormal", "qlognormal"])
def test_normal_families_are_refused(kind: str) -> None:
    expr = ParamExpr(kind=kind, mu=0.0, sigma=1.0, q=1.0 if kind.startswith("q") else None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Bayesian"):
        bayes.distributions({"--p": expr})


def test_values_have_the_kind_the_script_expects(tmp_path: Path) -> None:
    """ints for randint and integral quniform, multiples of q for the quantized kinds, log-space bounds."""
    space = {
        "--batch": ParamExpr(kind="quniform", low=8.0, high=64.0, q=8.0),
        "--layers": ParamExpr(kind="randint", upper=4),
        "--drop": ParamExpr(kind="quniform", low=0.0, high=0.5, q=0.1),
        "--lr": ParamExpr(kind="loguniform", low=-6.0, high=-1.0),
        "--wd": ParamExpr(kind="qloguniform", low=-7.0, high=-2.0, q=0.001),
        "--opt": ParamExpr(kind="choice", values=("adam", "sgd")),
    }
    asked = []
    for index in range(12):
        number, params = bayes.ask(tmp_path, STUDY, space, "minimize", 7, index, lambda i: False)
        asked.append(params)
        assert number == index
        assert isinstance(params["--batch"], int) and params["--batch"] % 8 == 0
        assert isinstance(params["--layers"], int) and 0 <= params["--layers"] <= 3
        assert params["--drop"] in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
        lr, wd = float(params["--lr"]), float(params["--wd"])
        assert math.exp(-6) <= lr <= math.exp(-1)
        assert abs(wd / 0.001 - round(wd / 0.001)) < 1e-9 and 0 <= wd <= 0.135  # exp(-2) = 0.1353
        assert repr(wd) == repr(float(f"{wd:.6f}"))  # 0.018, not 0.018000000000000002
        assert params["--opt"] in ("adam", "sgd")
        bayes.tell(tmp_path, STUDY, number, float(index), "COMPLETE")
    rows = bayes.summary(tmp_path, STUDY, space)
    assert [r["hpc_tf_trial"] for r in rows] == list(range(12))
    assert [r["params"] for r in rows] == asked  # the report shows what the scripts were given


def test_missing_optuna_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from hpc_tf.errors import UsageError

    monkeypatch.setitem(sys.modules, "optuna", None)  # makes `import optuna` raise ImportError
    with pytest.raises(UsageError, match=r"hpc_tf\[bayesian\]"):
        bayes.distributions(SPACE)


# ---------------------------------------------------------------------------------------------- concurrent sweeps
def test_twenty_racing_tasks_four_at_a_time_leave_a_consistent_journal(tmp_path: Path) -> None:
    run_free(tmp_path, seed=1234, trials=20, concurrency=4)
    rows = bayes.summary(tmp_path, STUDY, SPACE)
    assert len(rows) == 20
    assert sorted(r["number"] for r in rows) == list(range(20))
    assert sorted(r["hpc_tf_trial"] for r in rows) == list(range(20))
    assert {r["state"] for r in rows} == {"COMPLETE"}  # none left RUNNING
    # per-trial seeds: the random startup trials, asked at the same moment, still differ
    assert len({tuple(r["params"].values()) for r in rows}) == 20
    print(f"racing sweep: best {max(r['value'] for r in rows):.5f}")


def test_tpe_beats_random_search(tmp_path: Path) -> None:
    """20 trials, 4 live at a time, against the median best of 9 random searches of 20 draws.

    TPE's win is a probability, not a certainty (10 of the 20 trials are its random startup): replaying
    this schedule in one process, 83 of 100 seeds beat this median (Optuna 4.0 and 5.0 alike). With the
    interleaving fixed, the sweep is a function of its seed and the Optuna version, so this test is
    deterministic instead of flaky; 1234 is the first seed tried, not a chosen one."""
    run_scripted(tmp_path, seed=1234, trials=20, concurrency=4)
    rows = bayes.summary(tmp_path, STUDY, SPACE)
    assert len(rows) == 20 and {r["state"] for r in rows} == {"COMPLETE"}
    best = max(r["value"] for r in rows)
    random_median = statistics.median(random_best(seed, 20) for seed in range(9))
    print(f"TPE best {best:.5f}; median best of 9 random searches {random_median:.5f}")
    assert best > random_median


# ---------------------------------------------------------------------------------------------- zombies and requeues
def states(sweep: Path) -> dict[int, str]:
    return {r["number"]: r["state"] for r in bayes.summary(sweep, STUDY)}


def test_a_killed_task_is_failed_once_its_trial_has_ended(tmp_path: Path) -> None:
    proc = task(tmp_path, 5, 0, "hang")
    assert proc.stdout is not None
    number = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)  # as Slurm does at the time limit: no tell, ever
    with pytest.raises(AssertionError):
        ended(proc)
    assert states(tmp_path) == {number: "RUNNING"}
    assert bayes.fail_stale(tmp_path, STUDY, lambda i: False) == []  # still running, as far as we know
    assert states(tmp_path) == {number: "RUNNING"}

    asked: list[int] = []

    def is_final(index: int) -> bool:
        asked.append(index)
        return index == 0

    second, _ = bayes.ask(tmp_path, STUDY, SPACE, "maximize", 5, 1, is_final)
    assert asked == [0]
    assert states(tmp_path) == {number: "FAIL", second: "RUNNING"}
    assert bayes.fail_stale(tmp_path, STUDY, lambda i: True) == [second]
    assert bayes.fail_stale(tmp_path, STUDY, lambda i: True) == []


def test_a_trial_without_its_index_is_failed_after_the_grace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A task killed between Optuna's ask and the user attr: nothing says which hpc_tf trial it was."""
    bayes.ask(tmp_path, STUDY, SPACE, "maximize", 5, 0, lambda i: False)
    orphan = optuna.load_study(study_name=STUDY, storage=bayes._storage(tmp_path)).ask().number
    assert bayes.fail_stale(tmp_path, STUDY, lambda i: False) == []
    monkeypatch.setattr(bayes, "ORPHAN_GRACE_SECONDS", 0.0)
    assert bayes.fail_stale(tmp_path, STUDY, lambda i: False) == [orphan]
    assert states(tmp_path) == {0: "RUNNING", orphan: "FAIL"}


def test_a_requeued_task_gets_its_trial_back(tmp_path: Path) -> None:
    first = bayes.ask(tmp_path, STUDY, SPACE, "maximize", 5, 3, lambda i: False)
    other = bayes.ask(tmp_path, STUDY, SPACE, "maximize", 5, 4, lambda i: False)
    # the requeued task's own status may already read final (the previous attempt ended): not failed
    again = bayes.ask(tmp_path, STUDY, SPACE, "maximize", 5, 3, lambda i: i == 3)
    assert again == first != other
    assert states(tmp_path) == {0: "RUNNING", 1: "RUNNING"}


def test_a_trial_killed_half_way_through_its_suggestions_is_asked_anew(tmp_path: Path) -> None:
    study = optuna.create_study(study_name=STUDY, storage=bayes._storage(tmp_path), direction="maximize")
    half = study.ask({"--x": bayes.distributions(SPACE)["--x"]})
    half.set_user_attr(bayes.TRIAL_ATTR, 2)
    number, params = bayes.ask(tmp_path, STUDY, SPACE, "maximize", 5, 2, lambda i: False)
    assert number != half.number and set(params) == set(SPACE)
    assert states(tmp_path) == {half.number: "FAIL", number: "RUNNING"}


def test_asking_with_the_other_goal_is_refused(tmp_path: Path) -> None:
    from hpc_tf.errors import UsageError

    bayes.ask(tmp_path, STUDY, SPACE, "maximize", 5, 0, lambda i: False)
    with pytest.raises(UsageError, match="maximize"):
        bayes.ask(tmp_path, STUDY, SPACE, "minimize", 5, 1, lambda i: False)


# ---------------------------------------------------------------------------------------------- tell
def test_tell_is_idempotent_and_fails_what_has_no_value(tmp_path: Path) -> None:
    numbers = [bayes.ask(tmp_path, STUDY, SPACE, "maximize", 5, i, lambda i: False)[0] for i in range(6)]
    bayes.tell(tmp_path, STUDY, numbers[0], -1.0, "COMPLETE")
    bayes.tell(tmp_path, STUDY, numbers[0], -0.5, "COMPLETE")  # a second tell changes nothing
    bayes.tell(tmp_path, STUDY, numbers[0], None, "FAIL")
    bayes.tell(tmp_path, STUDY, numbers[1], math.nan, "COMPLETE")
    bayes.tell(tmp_path, STUDY, numbers[2], None, "COMPLETE")
    bayes.tell(tmp_path, STUDY, numbers[3], math.inf, "COMPLETE")
    bayes.tell(tmp_path, STUDY, numbers[4], -2.0, "PRUNED")  # the last value is kept
    bayes.tell(tmp_path, STUDY, numbers[5], None, "PRUNED")
    bayes.tell(tmp_path, STUDY, numbers[5], -3.0, "COMPLETE")
    rows = {r["number"]: (r["state"], r["value"]) for r in bayes.summary(tmp_path, STUDY)}
    assert rows == {
        numbers[0]: ("COMPLETE", -1.0),
        numbers[1]: ("FAIL", None),
        numbers[2]: ("FAIL", None),
        numbers[3]: ("FAIL", None),
        numbers[4]: ("PRUNED", -2.0),
        numbers[5]: ("PRUNED", None),
    }


def test_nothing_before_the_first_ask(tmp_path: Path) -> None:
    from hpc_tf.errors import UsageError

    assert bayes.summary(tmp_path, STUDY) == []
    assert bayes.fail_stale(tmp_path, STUDY, lambda i: True) == []
    assert not (tmp_path / bayes.JOURNAL_NAME).exists()  # reading never creates the journal
    with pytest.raises(UsageError, match="no Optuna study"):
        bayes.tell(tmp_path, STUDY, 0, 1.0, "COMPLETE")
    bayes.ask(tmp_path, STUDY, SPACE, "maximize", 5, 0, lambda i: False)
    with pytest.raises(UsageError, match="no trial 7"):
        bayes.tell(tmp_path, STUDY, 7, 1.0, "COMPLETE")
    assert not list(tmp_path.glob("*.db")) and not list(tmp_path.glob("*.sqlite*"))
