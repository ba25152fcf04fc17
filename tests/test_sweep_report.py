"""The sweep report, read back by the real thing: `tensorboard --logdir` started as a user would (its
default loader, the Rust data server, and the Python one), asked over HTTP what its HParams dashboard
shows; and the two PNG plots."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hpc_tf.errors import UsageError
from hpc_tf.sweeps.core.spec import ParamExpr
from hpc_tf.sweeps.report import TrialResult, plot_curves, plot_params, write_hparams

pytest.importorskip("tensorboard")

METRIC = "val_accuracy"
SPACE = {
    "--learning-rate": ParamExpr(kind="loguniform", low=-9, high=-2),
    "--optimizer": ParamExpr(kind="choice", values=("adam", "sgd")),
    "--layers": ParamExpr(kind="randint", upper=5),
    "--augment": ParamExpr(kind="choice", values=(True, False)),
}
# state, history: every kind of ending, histories of different lengths (none for the pending trial)
PLAN = [
    ("COMPLETED", [0.52, 0.61, 0.70, 0.74]),
    ("EARLY_TERMINATED", [0.31, 0.33]),
    ("FAILED", [0.45]),
    ("CANCELLED", [0.40, 0.47, 0.51]),
    ("RUNNING", [0.55, 0.66, 0.7123456789]),
    ("PENDING", []),
]
# the same sweep earlier on: trials 1 and 2 still running, the rest not started
EARLIER = [("COMPLETED", [0.52, 0.61, 0.70, 0.74]), ("RUNNING", [0.31]), ("RUNNING", []), *[("PENDING", [])] * 3]
EXPECTED_STATUS = {
    "COMPLETED": "STATUS_SUCCESS",
    "EARLY_TERMINATED": "STATUS_UNKNOWN",  # TensorBoard has no "aborted": ended, without a verdict
    "CANCELLED": "STATUS_UNKNOWN",
    "FAILED": "STATUS_FAILURE",
    "RUNNING": "STATUS_UNKNOWN",  # not ended: no session end (a running TensorBoard keeps the first it sees)
    "PENDING": "STATUS_UNKNOWN",
}
ALL_STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


def make_trials(plan: list[tuple[str, list[float]]]) -> list[TrialResult]:
    return [
        TrialResult(
            index=i,
            trial_id=f"20261128-163000-123abc_{i}",
            state=state,
            hyperparameters={
                "--learning-rate": math.exp(-9 + i * 1.4),  # spans > 2 decades: a log axis
                "--optimizer": ("adam", "sgd")[i % 2],
                "--layers": i % 5,
                "--augment": i % 3 == 0,
            },
            history=history,
        )
        for i, (state, history) in enumerate(plan)
    ]


# ---------------------------------------------------------------------------------------------- TensorBoard
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TensorBoard:
    """`python -m tensorboard.main --logdir ...` on a free localhost port, asked over HTTP."""

    def __init__(self, logdir: Path, load_fast: str, log: Path) -> None:
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.logdir = logdir
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1"),
                    *("--port", self.url.rsplit(":", 1)[1], "--load_fast", load_fast, "--reload_interval", "1"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            )

    def post(self, route: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            f"{self.url}/data/plugin/hparams/{route}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def session_groups(self) -> Any:
        body = {"experimentName": "", "allowedStatuses": ALL_STATUSES, "colParams": [], "sliceSize": 100}
        return self.post("session_groups", body)

    def shows(self, trials: list[TrialResult], timeout: float = 180) -> Any:
        """session_groups, once it shows `trials` as _check_sessions expects (loading takes a while; starting
        takes TensorFlow's import, which is slow when 4 test workers share 2 cores)."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, self.log.read_text(errors="replace")
            try:
                found = self.session_groups()
                _check_sessions(found, trials)
                return found
            except (urllib.error.URLError, ConnectionError, AssertionError, KeyError, ValueError):
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.3)

    def stop(self) -> None:
        self.proc.terminate()  # its data server exits with it (--die-after-stdin)
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def boards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, TensorBoard]]:
    """Three TensorBoards started at once (each takes seconds to start): the sweep of PLAN written in one
    call, read by the default loader; the same written one call per trial, all at once (as trials ending
    together do), read by the Python loader; and a sweep written again while its TensorBoard runs."""
    root = tmp_path_factory.mktemp("sweeps")
    write_hparams(root / "once" / "tensorboard", SPACE, METRIC, "maximize", make_trials(PLAN))
    with ThreadPoolExecutor(len(PLAN)) as pool:
        calls = [
            pool.submit(write_hparams, root / "per-trial" / "tensorboard", SPACE, METRIC, "maximize", [trial])
            for trial in make_trials(PLAN)
        ]
        for call in calls:
            call.result()
    write_hparams(root / "twice" / "tensorboard", SPACE, METRIC, "maximize", make_trials(EARLIER))
    started = {
        "default": TensorBoard(root / "once", "auto", root / "default.log"),
        "python": TensorBoard(root / "per-trial", "false", root / "python.log"),
        "twice": TensorBoard(root / "twice", "auto", root / "twice.log"),  # rewritten while it runs
    }
    try:
        yield started
    finally:
        for board in started.values():
            board.stop()


def _check_sessions(found: Any, trials: list[TrialResult]) -> None:
    """Each trial once, as a session (a run under the sweep's logdir) with its values, metric and status."""
    groups = {g["name"]: g for g in found["sessionGroups"]}
    assert sorted(groups) == sorted(t.trial_id for t in trials)
    for trial in trials:
        group = groups[trial.trial_id]
        (session,) = group["sessions"]
        assert session["name"] == f"tensorboard/{trial.trial_id}"
        assert session["status"] == EXPECTED_STATUS[trial.state], trial.state
        ended = trial.state not in ("RUNNING", "PENDING")
        assert (session.get("endTimeSecs", 0) > 0) is ended, (trial.state, session)  # a session end, or none
        shown = group["hparams"]
        assert shown["--optimizer"] == trial.hyperparameters["--optimizer"]
        assert shown["--augment"] is trial.hyperparameters["--augment"]
        assert shown["--layers"] == trial.hyperparameters["--layers"]
        assert shown["--learning-rate"] == pytest.approx(trial.hyperparameters["--learning-rate"], rel=1e-12)
        if not trial.history:
            assert session["metricValues"] == []
            continue
        assert len(session["metricValues"]) == 1, session["metricValues"]
        (value,) = session["metricValues"]
        assert value["name"] == {"tag": METRIC, "group": ""}
        assert value["value"] == float(np.float32(trial.history[-1]))  # scalars are float32, as tf.summary's
        assert value["trainingStep"] == len(trial.history)


@pytest.mark.parametrize("loader", ["default", "python"])
def test_tensorboard_shows_every_trial(boards: dict[str, TensorBoard], loader: str) -> None:
    boards[loader].shows(make_trials(PLAN))


@pytest.mark.parametrize("loader", ["default", "python"])
def test_tensorboard_shows_the_experiment_config(boards: dict[str, TensorBoard], loader: str) -> None:
    boards[loader].shows(make_trials(PLAN))
    experiment = boards[loader].post("experiment", {"experimentName": ""})
    infos = {i["name"]: i for i in experiment["hparamInfos"]}
    assert set(infos) == set(SPACE)
    assert infos["--optimizer"]["type"] == "DATA_TYPE_STRING"
    assert infos["--optimizer"]["domainDiscrete"] == ["adam", "sgd"]
    assert infos["--augment"]["type"] == "DATA_TYPE_BOOL"
    assert sorted(infos["--augment"]["domainDiscrete"]) == [False, True]
    assert infos["--layers"]["domainInterval"] == {"minValue": 0.0, "maxValue": 4.0}
    interval = infos["--learning-rate"]["domainInterval"]
    assert interval["minValue"] == pytest.approx(math.exp(-9))
    assert interval["maxValue"] == pytest.approx(math.exp(-2))
    assert infos["--learning-rate"]["description"] == "loguniform(-9, -2)"
    assert all(info["differs"] for info in infos.values())
    assert [m["name"] for m in experiment["metricInfos"]] == [{"tag": METRIC, "group": ""}]


def test_one_event_file_per_folder(boards: dict[str, TensorBoard]) -> None:
    """Also after concurrent calls: each removes the older event files only, so one (the latest) stays."""
    for board in boards.values():
        tb_root = board.logdir / "tensorboard"
        assert len(list(tb_root.glob("*tfevents*"))) == 1
        assert not list(tb_root.glob(".writing-*"))  # no partial file left behind
        for trial in make_trials(PLAN):
            assert len(list((tb_root / trial.trial_id).iterdir())) == 1


def test_writing_again_replaces_the_sessions(boards: dict[str, TensorBoard]) -> None:
    """Written again after more trials ended, read by a TensorBoard that was showing the earlier state:
    the new states and histories, each trial once."""
    board = boards["twice"]
    board.shows(make_trials(EARLIER))
    write_hparams(board.logdir / "tensorboard", SPACE, METRIC, "maximize", make_trials(PLAN))
    found = board.shows(make_trials(PLAN))
    assert found["totalSize"] == len(PLAN)


def test_writing_does_not_import_tensorflow(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from hpc_tf.sweeps.report import write_hparams, TrialResult\n"
        "t = TrialResult(index=0, trial_id='t0', state='COMPLETED', hyperparameters={'--x': 1.0}, history=[1.0])\n"
        f"write_hparams(Path({str(tmp_path)!r}), {{}}, 'loss', 'minimize', [t])\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert (tmp_path / "t0").is_dir()


def test_without_tensorboard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n == "tensorboard" or n.startswith("tensorboard.")]:
        monkeypatch.setitem(sys.modules, name, None)  # None: `import` raises ImportError
    with pytest.raises(UsageError, match="pip install tensorboard"):
        write_hparams(tmp_path, SPACE, METRIC, "maximize", make_trials(PLAN))


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="goal"):
        write_hparams(tmp_path, SPACE, METRIC, "best", make_trials(PLAN))
    bad = TrialResult(index=0, trial_id="../x", state="COMPLETED", hyperparameters={}, history=[])
    with pytest.raises(UsageError, match="folder name"):
        write_hparams(tmp_path, SPACE, METRIC, "maximize", [bad])


# ---------------------------------------------------------------------------------------------- plots
def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    trials = make_trials(PLAN)
    assert _is_png(plot_curves(trials, METRIC, tmp_path / "curves.png"))
    assert _is_png(plot_params(trials, METRIC, "maximize", tmp_path / "params.png"))
    assert _is_png(plot_params(trials, METRIC, "minimize", tmp_path / "params-min.png"))


def test_plots_need_a_logged_metric(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    nothing = make_trials([("PENDING", []), ("RUNNING", [])])
    with pytest.raises(UsageError, match=f"no trial has logged {METRIC} yet"):
        plot_curves(nothing, METRIC, tmp_path / "curves.png")
    with pytest.raises(UsageError, match=f"no trial has logged {METRIC} yet"):
        plot_params(nothing, METRIC, "maximize", tmp_path / "params.png")
