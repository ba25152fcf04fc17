"""Damaged files read inside a job or by `metrics`/`--json` (issue 19): a trial's runtime, a metrics reader and the
environment cache never die of a bad line or record; they count it as the worst value, skip it, or name it."""

from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path

import msgspec
import pytest

from hpc_tf.cli.text import json_line
from hpc_tf.core.records import SweepRecord
from hpc_tf.envs.build import COMPLETE, EnvBuildError, _touch
from hpc_tf.metrics import read_metrics
from hpc_tf.rundir import RunDir
from hpc_tf.sweeps.core.transitions import past_deadline
from hpc_tf.sweeps.early_stop import read_history

NOW = _dt.datetime(2026, 12, 7, tzinfo=_dt.timezone.utc)
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("deadline", "passed"),
    [("2026-12-06T00:00:00+00:00", True), ("2026-12-08T00:00:00+00:00", False), ("soon", False),
     ("2026-12-06T00:00:00", False), ("", False), (None, False)],
)  # fmt: skip
def test_a_damaged_deadline_is_never_passed(deadline: str | None, passed: bool) -> None:
    record = SweepRecord(sweep_id="s", experiment="e", backend="slurm", sampling="random", seed=0, trial_count=1,
                         primary_metric_name="m", primary_metric_goal="maximize", deadline=deadline)  # fmt: skip
    assert past_deadline(record, NOW) is passed


BAD_LINES = {  # name: the line, the value read_history counts
    "a huge integer": ('{"value": ' + "9" * 400 + "}", math.nan),
    "5,000 digits": ('{"value": ' + "1" * 5000 + "}", math.nan),
    "nested 100,000 deep": ('{"value": ' + DEEP + "}", math.nan),
    "a line being written": ('{"value": 0.5', None),
    "no value": ('{"step": 1}', None),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_a_damaged_metric_line_is_the_worst_value_or_skipped(tmp_path: Path, case: str) -> None:
    line, counted = BAD_LINES[case]
    path = tmp_path / "primary.jsonl"
    path.write_text('{"value": 0.9}\n' + line + '\n{"value": 0.8}\n')
    values = read_history(path)
    middle = [v for v in values[1:-1]]
    assert values[0] == 0.9 and values[-1] == 0.8
    assert (len(middle) == 1 and math.isnan(middle[0])) if counted is not None else middle == []


def test_metrics_skips_damaged_lines_and_what_is_not_a_file(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.metrics_dir.mkdir(parents=True)
    (run.metrics_dir / "rank-0.jsonl").write_text(
        "\n".join([json.dumps({"name": "loss", "value": 1.0, "step": 0}), '{"name": "loss", "value": ' + DEEP + "}",
                   '{"name": "loss", "value": ' + "1" * 5000 + "}", json.dumps({"name": "loss", "value": 0.5, "step": 1})])
    )  # fmt: skip
    (run.metrics_dir / "rank-1.jsonl").mkdir()
    assert [p["value"] for p in read_metrics(run)["loss"]] == [1.0, 0.5]


def test_json_output_of_a_path_with_undecodable_bytes() -> None:
    assert json.loads(json_line({"run_dir": "/runs/\udcff"})) == {"run_dir": "/runs/\udcff"}


@pytest.mark.parametrize("text", ["", "{", "[]", "null", DEEP])
def test_a_damaged_environment_record_is_named(tmp_path: Path, text: str) -> None:
    env = tmp_path / "abc123"
    env.mkdir()
    (env / COMPLETE).write_text(text)
    with pytest.raises(EnvBuildError, match=r"is damaged.*env prune --key abc123"):
        _touch(env)


def test_a_good_environment_record_is_read(tmp_path: Path) -> None:
    (tmp_path / COMPLETE).write_bytes(msgspec.json.encode({"key": "k"}))
    assert _touch(tmp_path) == {"key": "k"}
