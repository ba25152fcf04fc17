"""Issue 19, sweep configs and environment size: careless and hostile `hyperdrive:` blocks.

Each finding is a named row: the config `validate` refuses (exit 2, no traceback, nothing written), the key the
message names and the words it says (the bad value, what is allowed). Then: a sweep is sized before anything is
drawn (a Hypothesis test that no accepted block is over the bound and that the estimate bounds what is really
drawn; the refused 1 MiB config and the largest accepted sweep under a 2 GiB RLIMIT_AS); accepted draws are finite
and quantized; a refused submit leaves no sweep directory; a trial's hyperparameters too long for the environment
reach the script through HPC_TF_HPARAMS_FILE.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpc_tf.core.envsize import HPARAMS, HPARAMS_FILE, MAX_ARG_STRLEN
from hpc_tf.sweeps.core.budget import MAX_SWEEP_BYTES, MAX_TRIAL_ARGV_BYTES, argv_bytes, line_bytes, sweep_bytes
from hpc_tf.sweeps.core.parse import parse_sweep
from hpc_tf.sweeps.core.sampling import draw_trials
from hpc_tf.sweeps.core.spec import ParamExpr, SweepSpec
from tests.conftest import REPO, hpc, make_project, write_config

SPACE = "hyperdrive.hyperparameter_sampling.parameter_space"
BIG = "x" * 11_000  # 11 KB: 90 of them make the 1 MiB config, 20 an HPC_TF_HPARAMS over 128 KiB


def block(space: dict[str, Any], kind: str = "random", runs: int = 10, **more: Any) -> dict[str, Any]:
    sampling: dict[str, Any] = {"type": kind, "parameter_space": space}
    if kind != "grid":
        sampling["seed"] = 1
    base = {"primary_metric_name": "m", "primary_metric_goal": "maximize", "max_total_runs": runs}
    return {"hyperparameter_sampling": sampling, **base, **more}


def write(tmp_path: Path, hyperdrive: dict[str, Any] | str, **job: Any) -> Path:
    """A sweep config (JSON, or YAML text for a `hyperdrive:` block that only YAML's own syntax can give)."""
    project = make_project(tmp_path / "proj", "import hpc_tf\nhpc_tf.log('m', 1.0)\n")
    if isinstance(hyperdrive, str):
        path = tmp_path / "sweep.yaml"
        head = f"experiment: hd\nsource_directory: {project}\nentry_script: train.py\n"
        path.write_text(head + textwrap.dedent(hyperdrive))
        return path
    base = {"experiment": "hd", "source_directory": str(project), "entry_script": "train.py", **job}
    return write_config(tmp_path / "sweep.yaml", **base, hyperdrive=hyperdrive)


SPLIT = """\
hyperdrive:
  hyperparameter_sampling:
    type: grid
    parameter_space:
      --a: {type: choice, values: [choice(1, 2)]}
  primary_metric_name: m
  primary_metric_goal: maximize
  max_total_runs: 4
"""
CUT = SPLIT.replace(
    "    parameter_space:\n      --a: {type: choice, values: [choice(1, 2)]}",
    "    parameter_space: {--a: choice(1, 2)}",
)
SURROGATE = SPLIT.replace("[choice(1, 2)]", '["\\ud800", "b"]')

# (id, hyperdrive block or YAML text, job keys, the key named, words the message must hold)
FINDINGS: list[tuple[str, Any, dict[str, Any], str, list[str]]] = [
    # 1. sweeps that exhaust memory or crash
    (
        "1MiB-config-100000-runs",
        block({f"--p{i}": {"type": "choice", "values": [BIG + str(i)]} for i in range(90)}, runs=100_000),
        {},
        "hyperdrive.max_total_runs",
        ["92.3 GiB", "100000 trials", "at most 64 MiB", "67 or fewer", "(got 100000)"],
    ),
    (
        "choice-range-10e20",
        block({"--a": "choice(range(100000000000000000000))"}),
        {},
        f"{SPACE}.--a",
        ["at most 10000 values", "the range has 100000000000000000000"],
    ),
    (
        "duration-1e10-minutes",
        block({"--a": "uniform(0, 1)"}, max_duration_minutes=10**10),
        {},
        "hyperdrive.max_duration_minutes",
        ["at most 5256000 minutes", "(got 10000000000)"],
    ),
    (
        "v2-timeout-1e15-seconds",
        block({"--a": "uniform(0, 1)"}, limits={"timeout": 1e15}),
        {},
        "hyperdrive.limits.timeout",
        ["at most 315360000 seconds"],
    ),
    ("lone-surrogate-choice", SURROGATE, {}, f"{SPACE}.--a.values", ["lone surrogate", "(got '\\ud800')"]),
    (
        "surrogate-metric-name",
        {**block({"--a": "uniform(0, 1)"}), "primary_metric_name": "m\ud800"},
        {},
        "hyperdrive.primary_metric_name",
        ["lone surrogate"],
    ),
    (
        "choice-value-over-MAX_ARG_STRLEN",
        block({"--a": {"type": "choice", "values": ["z" * 140_000]}}),
        {},
        f"{SPACE}.--a",
        ["140001 bytes as a command-line argument", "131072"],
    ),
    (
        "bayesian-journal-too-large",
        block({f"--p{i}": "choice(range(10000))" for i in range(10)}, kind="bayesian", runs=1000),
        {},
        "hyperdrive.max_total_runs",
        ["Optuna's journal", "at most 64 MiB"],
    ),
    # 2. draws that mean something else
    (
        "lognormal-710-1",
        block({"--a": "lognormal(710, 1)"}),
        {},
        f"{SPACE}.--a",
        ["exp(718.58) overflows to inf", "mu + 8.58·sigma must be at most 709", "(got 710.0)"],
    ),
    (
        "uniform-pm-1e308",
        block({"--a": "uniform(-1e308, 1e308)"}),
        {},
        f"{SPACE}.--a",
        ["max_value - min_value overflows to inf", "±inf"],
    ),
    (
        "normal-0-1e308",
        block({"--a": "normal(0, 1e308)"}),
        {},
        f"{SPACE}.--a",
        ["|mu| + 8.58·sigma", "overflows to inf", "(got 1e+308)"],
    ),
    (
        "loguniform-underflow",
        block({"--a": {"type": "loguniform", "min_value": -800, "max_value": 0}}),
        {},
        f"{SPACE}.--a.min_value",
        ["at least -708", "comes out as 0"],
    ),
    (
        "quniform-tiny-q",
        block({"--a": "quniform(1000000, 1000001, 1e-12)"}),
        {},
        f"{SPACE}.--a",
        ["q 1e-12 is too small", "floats are 1.16e-10 apart", "q must be at least 1e-06"],
    ),
    (
        "qnormal-tiny-q",
        block({"--a": {"type": "qnormal", "mu": 1e6, "sigma": 1, "q": 1e-12}}),
        {},
        f"{SPACE}.--a.q",
        ["too small to quantize qnormal"],
    ),
    (
        "qloguniform-tiny-q",
        block({"--a": "qloguniform(0, 20, 1e-10)"}),
        {},
        f"{SPACE}.--a",
        ["too small to quantize qloguniform", "4.85165e+08"],
    ),
    (
        "choice-1-and-'1'",
        block({"--a": "choice(1, '1')"}, kind="grid"),
        {},
        f"{SPACE}.--a",
        ["choice values 1 and '1' both reach the script as the text '1'"],
    ),
    (
        "choice-True-and-'True'",
        block({"--a": "choice(True, 'True')"}, kind="grid"),
        {},
        f"{SPACE}.--a",
        ["True and 'True'", "the text 'True'"],
    ),
    (
        "choice-1e16-and-'1e+16'",
        block({"--a": {"type": "choice", "values": [1e16, "1e+16"]}}, kind="grid"),
        {},
        f"{SPACE}.--a.values",
        ["1e+16 and '1e+16'"],
    ),
    (
        "values-split-by-yaml",
        SPLIT,
        {},
        f"{SPACE}.--a.values",
        ["YAML split at its commas", "values: [1, 2]", "--a: 'choice(1, 2)'", "(got 'choice(1')"],
    ),
    ("call-cut-by-flow-mapping", CUT, {}, f"{SPACE}.--a", ["looks cut at a comma", "quote"]),
    ("randint-over-int64", block({"--a": "randint(100000000000000000000)"}), {}, f"{SPACE}.--a", ["2**63"]),
    # 3. too large for the environment (a plain run's variable: refused naming it and its size)
    (
        "plain-env-over-128KiB",
        None,
        {"environment_variables": {"BIG": "y" * 140_000}},
        "environment_variables.BIG",
        ["140005 bytes", "131072"],
    ),
]


@pytest.mark.parametrize(("hyperdrive", "job", "key", "words"), [f[1:] for f in FINDINGS], ids=[f[0] for f in FINDINGS])
def test_each_finding_is_refused_naming_key_value_and_bound(
    tmp_path: Path, hyperdrive: Any, job: dict[str, Any], key: str, words: list[str]
) -> None:
    if hyperdrive is None:
        path = write_config(tmp_path / "run.yaml", source_directory=str(make_project(tmp_path / "p", "pass\n")),
                            entry_script="train.py", **job)  # fmt: skip
    else:
        path = write(tmp_path, hyperdrive, **job)
    before = sorted(tmp_path.rglob("*"))
    proc = hpc("validate", str(path), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f": {key}: " in proc.stderr, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr
    assert sorted(tmp_path.rglob("*")) == before  # nothing written
    if hyperdrive is not None:  # render and submit read the config the same way: refused before anything is made
        for command in (["render"], ["submit", "--runs-dir", str(tmp_path / "runs")]):
            proc = hpc(*command, str(path), "--backend", "slurm", cwd=tmp_path)
            assert proc.returncode == 2 and "Traceback" not in proc.stderr and key in proc.stderr, proc.stderr
        assert not (tmp_path / "runs").exists()


def test_a_trial_over_1mib_of_command_line_is_refused() -> None:
    """A config file holds at most 1 MiB, so only Python (HyperDriveConfig) can give this; refused the same."""
    raw = block({f"--p{i}": {"type": "choice", "values": ["y" * 100_000]} for i in range(11)}, runs=1)
    spec, problems = parse_sweep(raw, "hyperdrive", "HyperDriveConfig(...)")
    assert spec is None and [p.key for p in problems] == [SPACE]
    for word in ("up to 1.05 MiB of its command line", "at most 1 MiB", "ARG_MAX", "the longest: --p10, 97.7 KiB"):
        assert word in problems[0].message, problems[0]


def test_twenty_values_of_11kb_are_a_valid_sweep(tmp_path: Path) -> None:
    """Its HPC_TF_HPARAMS is over 128 KiB: accepted, because it goes through a file (below)."""
    path = write(tmp_path, block({f"--p{i}": {"type": "choice", "values": [BIG]} for i in range(20)}))
    proc = hpc("validate", str(path))
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------------------------------ the bound
@st.composite
def choices(draw: st.DrawFn) -> dict[str, Any]:
    """A choice of up to 30 values: strings of 1 byte to 120 KB (past 11 KB: the findings' sizes), or ints."""
    count = draw(st.integers(1, 30))
    if draw(st.booleans()):
        size = draw(st.sampled_from([1, 10, 1000, 11_000, 120_000]))
        return {"type": "choice", "values": [f"{i}{'v' * size}" for i in range(count)]}
    ints = st.lists(st.integers(-(2**70), 2**70), min_size=1, max_size=count, unique=True)
    return {"type": "choice", "values": draw(ints)}


magnitudes = st.sampled_from([0.0, 1e-300, 1e-5, 1.0, 1e6, 1e15, 1e100, 1e300, 1.7e308])
signed = st.builds(lambda m, s: m * s, magnitudes, st.sampled_from([1.0, -1.0]))
continuous = st.one_of(
    st.builds(lambda k, a, b, q: {"type": k, "min_value": a, "max_value": b, **({"q": q} if k[0] == "q" else {})},
              st.sampled_from(["uniform", "quniform", "loguniform", "qloguniform"]), st.floats(-1e4, 1e3) | signed,
              st.floats(-1e3, 1e4) | signed, magnitudes.filter(bool) | st.floats(1e-15, 1e3)),
    st.builds(lambda k, mu, sigma, q: {"type": k, "mu": mu, "sigma": sigma, **({"q": q} if k[0] == "q" else {})},
              st.sampled_from(["normal", "qnormal", "lognormal", "qlognormal"]), st.floats(-1e3, 1e3) | signed,
              magnitudes.filter(bool) | st.floats(1e-6, 1e3), magnitudes.filter(bool) | st.floats(1e-15, 1e3)),
    st.integers(1, 2**64).map(lambda u: {"type": "randint", "upper": u}),
)  # fmt: skip


@st.composite
def sweeps(draw: st.DrawFn) -> dict[str, Any]:
    """Any sampling, 1 to 100 parameters (choices, or for random and bayesian also continuous kinds at every
    magnitude), up to 100,000 runs."""
    kind = draw(st.sampled_from(["random", "grid", "bayesian"]))
    exprs = choices() if kind == "grid" else st.one_of(choices(), choices(), choices(), continuous)
    space = {f"--p{i}": draw(exprs) for i in range(draw(st.integers(1, 4) | st.sampled_from([30, 100])))}
    return block(space, kind=kind, runs=draw(st.sampled_from([1, 7, 1000, 33_000, 100_000])))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(sweeps())
def test_no_accepted_block_is_over_the_bound_and_the_estimate_bounds_the_draws(raw: dict[str, Any]) -> None:
    spec, problems = parse_sweep(raw, "hyperdrive", None)
    assert (spec is None) == bool(problems)
    if spec is None:
        return
    total, _ = sweep_bytes(spec)
    assert total <= MAX_SWEEP_BYTES  # what submit would build (or Optuna's journal would hold) fits
    assert sum(argv_bytes(f, e) for f, e in spec.parameter_space.items()) <= MAX_TRIAL_ARGV_BYTES
    if spec.sampling == "bayesian":
        return
    few = msgspec.structs.replace(spec, max_total_runs=min(spec.trial_count, 5))  # the first trials are the same
    encode = msgspec.json.Encoder().encode
    width = line_bytes(spec.parameter_space, spec.trial_count)
    for index, trial in enumerate(draw_trials(few, 7)):
        assert len(encode({"trial": index, "hyperparameters": trial}) + b"\n") <= width
        for flag, value in trial.items():
            assert len(str(value).encode()) + len(flag) + 2 <= argv_bytes(flag, spec.parameter_space[flag])
            assert not isinstance(value, float) or math.isfinite(value), (flag, value)  # finding 2: never inf


@settings(max_examples=1000, deadline=None)
@given(continuous, st.integers(0, 2**31))
def test_accepted_draws_are_finite_and_quantized(expr: dict[str, Any], seed: int) -> None:
    spec, _ = parse_sweep(block({"--a": expr}, runs=20), "hyperdrive", None)
    if spec is None:
        return
    q = spec.parameter_space["--a"].q
    for trial in draw_trials(spec, seed):
        value = trial["--a"]
        assert math.isfinite(value)
        if q is not None:
            ratio = value / q
            assert abs(ratio - round(ratio)) <= 1e-3, (expr, value)  # a multiple of q, to float precision


def _limited(code: str) -> subprocess.CompletedProcess[str]:
    """`code` in a new interpreter whose address space is capped at 2 GiB."""
    cap = "import resource; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", cap + code], capture_output=True, text=True, timeout=300, env=env)


def test_the_1mib_config_is_refused_under_a_2gib_address_space(tmp_path: Path) -> None:
    path = write(tmp_path, block({f"--p{i}": {"type": "choice", "values": [BIG + str(i)]} for i in range(90)},
                                 runs=100_000))  # fmt: skip
    assert path.stat().st_size > 990_000
    proc = _limited(f"import runpy, sys; sys.argv = ['hpc_tf', 'validate', {str(path)!r}]; runpy.run_module('hpc_tf')")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "92.3 GiB" in proc.stderr, proc.stderr


def test_the_largest_accepted_sweep_draws_and_encodes_under_2gib() -> None:
    """64 MiB of 1-character values (the most Python objects per byte of trials.jsonl), drawn as submit does."""
    code = """
import msgspec
from hpc_tf.sweeps.core.parse import parse_sweep
from hpc_tf.sweeps.core.sampling import draw_trials
from hpc_tf.sweeps.core.budget import sweep_bytes, MAX_SWEEP_BYTES
raw = {"hyperparameter_sampling": {"type": "random", "seed": 1,
       "parameter_space": {f"--p{i:02d}": "randint(2)" for i in range(100)}},
       "primary_metric_name": "m", "primary_metric_goal": "maximize", "max_total_runs": 64000}
spec, problems = parse_sweep(raw, "hyperdrive", None)
assert spec is not None, problems
total, _ = sweep_bytes(spec)
assert MAX_SWEEP_BYTES * 0.95 < total <= MAX_SWEEP_BYTES, total
encode = msgspec.json.Encoder().encode
data = b"".join(encode({"trial": i, "hyperparameters": t}) + b"\\n" for i, t in enumerate(draw_trials(spec, 1)))
assert len(data) <= total
print(len(data))
"""
    proc = _limited(code)
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------------------- nothing half-made
@pytest.fixture
def fake_slurm(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """submit_sweep with the cluster's limits and sbatch stood in for (every script sbatch'ed is recorded)."""
    from hpc_tf.backends import slurm, slurm_submit

    queued: list[str] = []
    monkeypatch.setattr(slurm.SlurmBackend, "start_array_limits", lambda self: lambda: (None, None, "test"))
    monkeypatch.setattr(slurm_submit, "sbatch", lambda *args: queued.append(args[-1]) or str(100 + len(queued)))
    return queued


def _submission(tmp_path: Path, sweep: SweepSpec) -> tuple[Any, Any]:
    from hpc_tf.config.loading import validate
    from hpc_tf.config.targets import Target
    from hpc_tf.settings import Settings
    from hpc_tf.sweeps.submit import SweepSubmission

    project = make_project(tmp_path / "proj", "pass\n")
    spec = validate({"experiment": "hd", "source_directory": str(project), "entry_script": "train.py"}, tmp_path)
    settings = Settings.from_env({}, runs_dir=tmp_path / "runs")
    return SweepSubmission(spec, sweep, Target(name="t", backend="slurm"), "slurm", "test"), settings


SPEC = SweepSpec(sampling="grid", parameter_space={"--a": ParamExpr(kind="choice", values=("a", "b"))},
                 primary_metric_name="m", primary_metric_goal="maximize", max_total_runs=2)  # fmt: skip


@pytest.mark.parametrize(
    "sweep",
    [
        msgspec.structs.replace(SPEC, max_duration_minutes=10**10),  # its deadline is past any date: before mkdir
        msgspec.structs.replace(SPEC, parameter_space={"--a": ParamExpr(kind="choice", values=("\ud800", "b"))}),
    ],
    ids=["deadline-past-year-9999", "surrogate-in-trials-jsonl"],
)
def test_a_submit_that_fails_before_sbatch_leaves_no_sweep_directory(
    tmp_path: Path, fake_slurm: list[str], sweep: SweepSpec
) -> None:
    """A SweepSpec made in Python skips the config checks: what fails still leaves nothing behind."""
    from hpc_tf.sweeps.submit import submit_sweep

    sub, settings = _submission(tmp_path, sweep)
    with pytest.raises(Exception) as caught:
        submit_sweep(sub, settings)
    assert not isinstance(caught.value, AssertionError)
    assert not [p for p in (tmp_path / "runs").rglob("*") if p.is_file()], list((tmp_path / "runs").rglob("*"))
    assert fake_slurm == []


def test_a_good_sweep_still_submits(tmp_path: Path, fake_slurm: list[str]) -> None:
    from hpc_tf.sweeps.submit import submit_sweep

    sub, settings = _submission(tmp_path, SPEC)
    sweep_dir = submit_sweep(sub, settings)
    record = sweep_dir.read()
    assert record.sweep_id == sweep_dir.sweep_id and [c.job_id for c in record.chunks] == ["101"]
    assert json.loads(sweep_dir.job_json.read_text())["run_id"] == sweep_dir.sweep_id
    assert len(sweep_dir.read_trials()) == 2 and len(fake_slurm) == 1


# ------------------------------------------------------------------------------ HPC_TF_HPARAMS by file
def _trial_job(tmp_path: Path, hyperparameters: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    from hpc_tf.config.loading import validate
    from hpc_tf.core.plan import job_record
    from hpc_tf.core.records import TrialInfo
    from hpc_tf.rundir import RunDir
    from hpc_tf.sweeps import trial

    monkeypatch.setattr(trial.SweepDir, "read", lambda self: msgspec.structs.replace(SPEC, primary_metric_name="m"))
    spec = validate(
        {"source_directory": str(make_project(tmp_path / "p", "pass\n")), "entry_script": "train.py"}, tmp_path
    )
    info = TrialInfo(sweep_id="s", sweep_dir=str(tmp_path / "s"), index=3, hyperparameters=hyperparameters,
                     array_task="7_3")  # fmt: skip
    job = msgspec.structs.replace(job_record(spec, "s_3", "slurm", sys.executable), trial=info)
    (tmp_path / "s_3").mkdir()
    return job, RunDir(tmp_path / "s_3")


def test_short_hyperparameters_stay_in_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hpc_tf.sweeps.trial import trial_environment

    job, run = _trial_job(tmp_path, {"--lr": 0.1}, monkeypatch)
    env = trial_environment(job, run)
    assert json.loads(env[HPARAMS]) == {"--lr": 0.1} and HPARAMS_FILE not in env and not run.tasks_dir.exists()


def test_long_hyperparameters_reach_the_script_through_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """20 values of 11 KB: HPC_TF_HPARAMS would be 220 KB, and execve refuses a string over 128 KiB (exit 127)."""
    from hpc_tf.job.runtime import child_environment, with_child_site
    from hpc_tf.sweeps.trial import hparams_file, trial_environment

    params = {f"--p{i}": BIG for i in range(20)}
    job, run = _trial_job(tmp_path, params, monkeypatch)
    text = json.dumps(params)
    assert len(text) > MAX_ARG_STRLEN
    with pytest.raises(OSError, match="Argument list too long"):  # what every trial did before
        subprocess.run(["/bin/true"], env={HPARAMS: text}, check=False)
    inherited = {"PATH": os.environ["PATH"], HPARAMS: "stale", HPARAMS_FILE: "/stale"}
    env = child_environment(inherited, job, run, 0)
    env.update(trial_environment(job, run))
    env = with_child_site(env)
    assert HPARAMS not in env and env[HPARAMS_FILE] == str(hparams_file(run)) == str(run.tasks_dir / "hparams.json")
    assert json.loads(hparams_file(run).read_text()) == params
    probe = (
        "import json, os, subprocess\n"
        "params = json.loads(os.environ['HPC_TF_HPARAMS'])\n"
        "in_c = b'HPC_TF_HPARAMS=' in open('/proc/self/environ', 'rb').read()\n"
        "child = subprocess.run(['/bin/sh', '-c', 'echo started'], capture_output=True, text=True).stdout.strip()\n"
        "print(json.dumps([len(params), params['--p0'] == 'x' * 11000, in_c, child]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [20, True, False, "started"]  # a program the script starts still starts


def test_a_missing_hyperparameters_file_stops_the_script(tmp_path: Path) -> None:
    from hpc_tf.job.runtime import CHILD_SITE

    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(CHILD_SITE), HPARAMS_FILE: str(tmp_path / "gone")}
    proc = subprocess.run([sys.executable, "-c", "print('ran')"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "ran" not in proc.stdout
    assert f"hpc_tf: cannot read HPC_TF_HPARAMS from {HPARAMS_FILE}={tmp_path / 'gone'}" in proc.stderr


def test_the_child_site_names_the_same_variable() -> None:
    from hpc_tf.job.runtime import CHILD_SITE

    assert f'HPARAMS_FILE = "{HPARAMS_FILE}"' in (CHILD_SITE / "sitecustomize.py").read_text()
