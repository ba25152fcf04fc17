"""Issue 19, careless and hostile input: the REQUEUE, ROLES and SBATCH-OPTION findings, one named regression case
each. A finding is refused with the dotted key, the value and what is allowed (through `validate`, the function every
entry point calls, and the pure checks behind it), or handled so it means what it says; a few go through the real
CLI (`python -m hpc_tf validate`: exit 2, no traceback, nothing written). The real-cluster side (sbatch's own table,
sbatch reading `--sig` as `--signal`, `-t 5:99`, `--signal=PWR`) is tests/test_hardening_requeue_jobs.py."""

from __future__ import annotations

import json
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest

from hpc_tf.config.loading import validate
from hpc_tf.config.targets import resolve_target
from hpc_tf.core.plan import slurm_plan
from hpc_tf.core.slurm_options import (
    HPC_TF_OPTIONS,
    SBATCH_LONG_OPTIONS,
    option_name,
    sbatch_option,
    time_limit_seconds,
    time_parts,
)
from hpc_tf.core.spec import (
    CHECKPOINT_SIGNALS,
    HETJOB_JOB_OPTIONS,
    RUN_DIR_ENTRIES,
    SBATCH_SIGNALS,
    EstimatorSpec,
    SlurmOptions,
)
from hpc_tf.core.validation import convert
from hpc_tf.errors import ConfigError, Problem
from hpc_tf.rundir import RunDir

REPO = Path(__file__).resolve().parent.parent.parent
ONE = {"source_directory": "digits", "entry_script": "train.py"}  # configs/digits: one process
PS = {
    "source_directory": "parameter-server",
    "entry_script": "train.py",
    "distributed_backend": "ps",
    "worker_count": 2,
}
TIMEOUT = {"requeue_on": ["timeout"]}


def problems(base: dict[str, Any] = ONE, **keys: Any) -> list[Problem]:
    """Every problem `validate` (and, for a valid config, its target's rules) finds; [] for a valid config."""
    try:
        spec = validate({**base, **keys}, REPO / "configs")
        resolve_target(spec, ())
    except ConfigError as exc:
        return exc.problems
    return []


def refused(key: str, *words: str, base: dict[str, Any] = ONE, **keys: Any) -> Problem:
    """The one problem about `key`; its message holds every word."""
    found = [p for p in problems(base, **keys) if p.key == key]
    assert len(found) == 1, (key, problems(base, **keys))
    assert all(w in found[0].message for w in words), (words, found[0])
    return found[0]


def params(**items: Any) -> dict[str, Any]:
    return {"compute_target": {"additional_parameters": items}}


def role_params(**items: Any) -> dict[str, Any]:
    return {"roles": {"worker": {"additional_parameters": items}}}


# ---------------------------------------------------------------- 1. additional_parameters: options hpc_tf sets

SIGNAL_ABBREVIATIONS = ["sig", "sign", "signa", "signal"]


@pytest.mark.parametrize("name", SIGNAL_ABBREVIATIONS)
def test_finding_1_signal_under_any_prefix_is_refused(name: str) -> None:
    """`sig: USR1@5` would replace hpc_tf's --signal=USR2@120 (a later #SBATCH line wins): the run would die at the
    limit without saving. Refused naming the key, the option it abbreviates and what to use instead."""
    problem = refused(
        f"compute_target.additional_parameters.{name}",
        "--signal",
        "set by hpc_tf itself",
        "checkpoint_signal",
        "checkpoint_lead_seconds",
        **TIMEOUT,
        **params(**{name: "USR1@5"}),
    )
    assert problem.value == "USR1@5"
    assert ("sbatch reads it as --signal" in problem.message) is (name != "signal")


def _prefixes(option: str) -> list[str]:
    """Every name sbatch reads as `option`: its own, and each prefix getopt_long resolves to it."""
    return [option[:n] for n in range(1, len(option) + 1) if sbatch_option(option[:n]).option == option]


@pytest.mark.parametrize("option", sorted(HPC_TF_OPTIONS))
def test_finding_1_every_option_hpc_tf_sets_is_refused_under_every_prefix(option: str) -> None:
    """The planner's own options (job-name, output, open-mode, nodes, ntasks…, requeue/no-requeue, signal, the named
    fields, chdir of sbatch's argv, array of a sweep) and those it depends on, each name sbatch reads as them."""
    assert option in SBATCH_LONG_OPTIONS
    names = _prefixes(option)
    assert option in names
    for name in names:
        for key in {name, name.replace("-", "_")}:
            options, found = convert(SlurmOptions, {"additional_parameters": {key: "x"}}, "c.yaml", "compute_target")
            assert options is None and [p.key for p in found] == [f"compute_target.additional_parameters.{key}"]
            assert f"--{option}" in found[0].message and "set by hpc_tf itself" in found[0].message, found
            assert HPC_TF_OPTIONS[option] in found[0].message and found[0].value == "x"


def test_finding_1_the_planner_sets_nothing_hpc_tf_options_leave_out() -> None:
    """Every option a job script's #SBATCH block can have (requeue_on's and the named fields' included) is in
    HPC_TF_OPTIONS, but --requeue: additional_parameters may ask for Slurm's own requeue (the README's row)."""
    spec = validate({**ONE, **TIMEOUT, "max_run_duration_seconds": 600, "use_gpu": True}, REPO / "configs")
    options = SlurmOptions(
        partition="p", account="a", qos="q", cpus_per_task=2, mem="1G", constraint="c", exclude="n9", reservation="r"
    )
    emitted = {name for name, _ in slurm_plan(spec, options, "python3", "").directives}
    assert emitted - set(HPC_TF_OPTIONS) == {"requeue"}, emitted
    plain = validate(dict(ONE), REPO / "configs")
    assert {name for name, _ in slurm_plan(plain, SlurmOptions(), "python3", "").directives} <= set(HPC_TF_OPTIONS)


@pytest.mark.parametrize(
    ("name", "candidates"),
    [
        ("s", ["--signal", "--sockets-per-node", "--spread-job", "--switches"]),
        ("gp", ["--gpu-bind", "--gpu-freq", "--gpus", "--gpus-per-node", "--gpus-per-socket", "--gpus-per-task"]),
        ("me", ["--mem", "--mem-bind", "--mem-per-cpu", "--mem-per-gpu"]),
        ("clu", ["--cluster-constraint", "--cluster", "--clusters"]),
        ("mem_per", ["--mem-per-cpu", "--mem-per-gpu"]),
        ("no", ["--no-kill", "--no-requeue", "--nodefile", "--nodelist", "--nodes"]),
    ],
)
def test_finding_1_an_ambiguous_prefix_is_refused_naming_the_candidates(name: str, candidates: list[str]) -> None:
    problem = refused(
        f"compute_target.additional_parameters.{name}", "cannot tell", "whole name", **params(**{name: 1})
    )
    assert all(c in problem.message for c in candidates), problem


def test_finding_1_one_option_under_two_names_is_refused() -> None:
    refused("compute_target.additional_parameters.hol", "--hold is given twice", **params(hold=True, hol=False))
    refused(
        "compute_target.additional_parameters.mail-type",
        "given twice",
        **params(mail_type="END", **{"mail-type": "ALL"}),
    )


@pytest.mark.parametrize("name", ["requeue", "requeu", "req"])
def test_finding_1_requeue_under_any_prefix_is_one_with_requeue_on(name: str) -> None:
    """Refused with requeue_on (give one); without it, a prefix asks Slurm's requeue as `requeue` does: the script
    gets --requeue and not hpc_tf's --no-requeue too (before: both, and the last won)."""
    refused(
        f"requeue_on + compute_target.additional_parameters.{name}", "give one", **TIMEOUT, **params(**{name: True})
    )
    spec = validate({**ONE, **params(**{name: True})}, REPO / "configs")
    options = convert(SlurmOptions, spec.compute_target, None)[0]  # type: ignore[arg-type]
    directives = [n for n, _ in slurm_plan(spec, options, "python3", "").directives]  # type: ignore[arg-type]
    assert "requeue" in directives and "no-requeue" not in directives, directives


def test_finding_1_an_abbreviation_is_rendered_as_the_option_it_means() -> None:
    """`mail_ty` is --mail-type to sbatch: hpc_tf renders that name (and reads its level, GPUs… by it)."""
    spec = validate({**ONE, **params(mail_ty="END", hol=True, exclusi=None)}, REPO / "configs")
    options = convert(SlurmOptions, spec.compute_target, None)[0]  # type: ignore[arg-type]
    directives = slurm_plan(spec, options, "python3", "").directives  # type: ignore[arg-type]
    assert directives[-3:] == [("mail-type", "END"), ("hold", None), ("exclusive", None)]
    assert option_name("mail_ty") == "mail-type" and option_name("my_plugin_opt") == "my-plugin-opt"


def test_finding_1_a_name_sbatch_does_not_know_is_left_to_sbatch() -> None:
    """A site's SPANK plugin adds options of its own: not refused here (sbatch refuses what it does not know)."""
    assert problems(**params(my_plugin_opt="x", comment="ok", exclusive=True)) == []


@pytest.mark.parametrize(
    ("name", "option"),
    [
        ("sig", "signal"),
        ("outp", "output"),
        ("accou", "account"),
        ("qo", "qos"),
        ("reserv", "reservation"),
        ("depend", "dependency"),
        ("requeu", "requeue"),
        ("hol", "hold"),
        ("cluster", "cluster"),  # the exact name wins over cluster-constraint, clusters
        ("mem", "mem"),
        ("tasks-per", "tasks-per-node"),
        ("gres", "gres"),
        ("zz", None),
        ("", None),
    ],
)
def test_the_resolver_reads_a_name_as_getopt_long(name: str, option: str | None) -> None:
    assert sbatch_option(name).option == option


# ---------------------------------------------------------------- 2. roles: whole-job options under any prefix

WHOLE_JOB = sorted(HETJOB_JOB_OPTIONS - set(HPC_TF_OPTIONS))


def _whole_job_abbreviations() -> list[tuple[str, str]]:
    """Per whole-job option: the shortest abbreviation sbatch reads as it, and a longer one where there is one."""
    out = []
    for option in WHOLE_JOB:
        names = [n for n in _prefixes(option) if n != option]  # none for export, wait: prefixes of export-file, …
        out += [(names[0], option)] if names else []
        out += [(names[len(names) // 2], option)] if len(names) > 2 else []
    return out


@pytest.mark.parametrize(("name", "option"), _whole_job_abbreviations())
def test_finding_2_a_roles_whole_job_option_is_refused_under_any_prefix(name: str, option: str) -> None:
    """accou, qo, reserv, depend, requeu, hol…: sbatch would apply them to one component only."""
    key = name.replace("-", "_")
    problem = refused(
        f"roles.worker.additional_parameters.{key}",
        f"sbatch reads it as --{option}",
        "whole job",
        "compute_target.additional_parameters",
        base=PS,
        **role_params(**{key: "x"}),
    )
    assert problem.value == "x"


@pytest.mark.parametrize("name", ["accou", "qo", "reserv", "exclud", "time", "partit", "sig", "outp", "ntasks_per_n"])
def test_finding_2_a_roles_option_hpc_tf_sets_is_refused_under_any_prefix(name: str) -> None:
    refused(f"roles.worker.additional_parameters.{name}", "set by hpc_tf itself", base=PS, **role_params(**{name: "1"}))


def test_finding_2_the_brief_s_thirty_abbreviations_are_all_refused() -> None:
    names = [n for n, _ in _whole_job_abbreviations()] + ["accou", "qo", "reserv", "depend", "requeu", "hol"]
    assert len(set(names)) >= 30
    passed = [n for n in set(names) if not problems(PS, **role_params(**{n.replace("-", "_"): "x"}))]
    assert passed == []


def test_finding_2_compute_target_with_roles_reads_names_as_sbatch_does() -> None:
    """With roles compute_target.additional_parameters holds the whole job's only: `mail_ty` is --mail-type (kept),
    `exclusi` is --exclusive (sbatch would apply it to the chief's component alone: refused)."""
    assert problems(PS, roles={"worker": {}}, **params(mail_ty="END", hol=True)) == []
    refused(
        "compute_target.additional_parameters.exclusi",
        "first component only",
        base=PS,
        roles={"worker": {}},
        **params(exclusi=True),
    )


def test_finding_2_gpus_for_parameter_servers_under_a_prefix_are_refused() -> None:
    refused(
        "roles.ps.additional_parameters.gpus_per_t",
        "no GPU",
        base=PS,
        roles={"ps": {"additional_parameters": {"gpus_per_t": 1}}},
    )


# ---------------------------------------------------------------- 3. checkpoint_dir: the run directory's own names

OWN = [".", "./", "logs", "./logs", "logs/x", "logs/", "outputs", "tasks", "status.json", "job.json", "job.sh"]
OWN += ["snapshot/ckpt", "metrics", "work", ".submitit", "tensorboard", "config.yaml", "environment.json"]


@pytest.mark.parametrize("value", OWN)
def test_finding_3_a_checkpoint_dir_on_the_run_directory_s_own_is_refused(value: str) -> None:
    problem = refused("checkpoint_dir", "folder of their own", "'checkpoints'", checkpoint_dir=value)
    assert problem.value == value


@pytest.mark.parametrize("value", ["outputs/../tasks", "a/../logs", "../x", "/abs", "~/x", ""])
def test_finding_3_a_checkpoint_dir_out_of_place_is_refused(value: str) -> None:
    refused("checkpoint_dir", "inside the run directory", checkpoint_dir=value)


@pytest.mark.parametrize("value", ["checkpoints", "ckpt/logs", "./ckpt/", "logs2", "my.outputs", "a/b/c"])
def test_finding_3_a_folder_of_its_own_is_taken(value: str) -> None:
    assert problems(checkpoint_dir=value) == []


def test_finding_3_every_entry_of_a_run_directory_is_known(tmp_path: Path) -> None:
    """RUN_DIR_ENTRIES holds the first part of every path RunDir names (properties and per-rank/attempt paths)."""
    run = RunDir(tmp_path / "r")
    paths = []
    for name in dir(RunDir):
        attr = getattr(RunDir, name)
        if isinstance(attr, property):
            value = getattr(run, name)
            paths += [value] if isinstance(value, Path) else []
        elif callable(attr) and not name.startswith("__"):
            try:
                value = getattr(run, name)(1)
            except Exception:
                continue
            paths += [value] if isinstance(value, Path) else []
    firsts = {p.relative_to(run.path).parts[0] for p in paths if p != run.path and run.path in p.parents}
    assert len(firsts) >= 10 and firsts <= RUN_DIR_ENTRIES, firsts - RUN_DIR_ENTRIES


# ---------------------------------------------------------------- 4. checkpoint_lead_seconds and the time limit


@pytest.mark.parametrize(
    ("keys", "key", "words"),
    [
        ({"max_run_duration_seconds": 100}, "checkpoint_lead_seconds + max_run_duration_seconds", ["120 s", "100 s"]),
        ({"max_run_duration_seconds": 120}, "checkpoint_lead_seconds + max_run_duration_seconds", ["120 s"]),
        ({"compute_target": {"time": "2"}}, "checkpoint_lead_seconds + compute_target.time", ["120 s", "'2'"]),
        ({"compute_target": {"time": 1}}, "checkpoint_lead_seconds + compute_target.time", ["120 s", "60 s"]),
        (
            {"compute_target": {"time": "1:30"}, "checkpoint_lead_seconds": 90},
            "checkpoint_lead_seconds + compute_target.time",
            ["90 s", "'1:30'"],
        ),
        (
            {"compute_target": {"time": "1:00:00"}, "max_run_duration_seconds": 60, "checkpoint_lead_seconds": 60},
            "checkpoint_lead_seconds + max_run_duration_seconds",  # max_run_duration_seconds wins, as in the job
            ["60 s"],
        ),
    ],
)
def test_finding_4_a_lead_at_or_over_the_time_limit_is_refused(keys: dict, key: str, words: list[str]) -> None:
    problem = refused(key, "not shorter than the job's time limit", *words, **TIMEOUT, **keys)
    assert problem.value == keys.get("checkpoint_lead_seconds", 120)


@pytest.mark.parametrize(
    "keys",
    [
        {**TIMEOUT, "max_run_duration_seconds": 121},
        {**TIMEOUT, "compute_target": {"time": "UNLIMITED"}},
        {**TIMEOUT, "compute_target": {"time": "1"}, "checkpoint_lead_seconds": 40},  # configs/long-training.yaml
        {"requeue_on": ["node_failure"], "max_run_duration_seconds": 60},  # no warning is asked
        {"max_run_duration_seconds": 60},
    ],
)
def test_finding_4_a_lead_inside_the_limit_or_no_warning_is_taken(keys: dict) -> None:
    assert problems(**keys) == []


def test_finding_4_a_named_target_s_time_counts_with_roles(tmp_path: Path) -> None:
    targets = tmp_path / "targets.yaml"
    targets.write_text("short:\n  time: '2'\n  partition: cpu\n  mem: 1000\n")
    spec = validate({**PS, **TIMEOUT, "roles": {"worker": {}}, "compute_target": "short"}, REPO / "configs")
    with pytest.raises(ConfigError) as info:
        resolve_target(spec, [targets])
    assert [p.key for p in info.value.problems] == ["checkpoint_lead_seconds + compute_target.time"]


# ---------------------------------------------------------------- 5. max_restarts per cause


@pytest.mark.parametrize(
    ("requeue_on", "limits", "missing"),
    [
        (["timeout"], {}, "timeout"),
        (["timeout", "preemption"], {"preemption": 2}, "timeout"),
        (["timeout", "preemption", "node_failure"], {"timeout": 1}, "preemption, node_failure"),
    ],
)
def test_finding_5_max_restarts_without_a_cause_of_requeue_on_is_refused(
    requeue_on: list[str], limits: dict, missing: str
) -> None:
    problem = refused(
        "max_restarts", f"no count for {missing}", "never be requeued", requeue_on=requeue_on, max_restarts=limits
    )
    assert problem.value == limits


@pytest.mark.parametrize("limits", [3, {"timeout": 2}, {"timeout": 2, "preemption": 0}])
def test_finding_5_a_count_for_every_cause_is_taken(limits: Any) -> None:
    assert problems(requeue_on=["timeout"], max_restarts=limits) == []


# ---------------------------------------------------------------- 6. checkpoint_signal: what sbatch takes


def test_finding_6_pwr_is_refused_naming_what_is_allowed() -> None:
    problem = refused(
        "checkpoint_signal", "'USR2'", "'USR1'", "'URG'", "'XCPU'", "PWR sbatch refuses", checkpoint_signal="PWR"
    )
    assert problem.value == "PWR"


@pytest.mark.parametrize("name", ["KILL", "STOP", "TERM", "INT", "CONT", "HUP", "usr2", "SIGUSR2", ""])
def test_finding_6_a_signal_the_runtime_cannot_own_is_refused(name: str) -> None:
    refused("checkpoint_signal", "valid values", checkpoint_signal=name)


def test_finding_6_the_allowed_signals_are_sbatch_s() -> None:
    """The schema's Literal is CHECKPOINT_SIGNALS, every one of them in sbatch 22.05's sig_name2num table."""
    literal = typing.get_args(typing.get_type_hints(EstimatorSpec)["checkpoint_signal"])
    assert literal == CHECKPOINT_SIGNALS and set(CHECKPOINT_SIGNALS) <= set(SBATCH_SIGNALS)
    assert "PWR" not in SBATCH_SIGNALS and len(SBATCH_SIGNALS) == 16
    for name in CHECKPOINT_SIGNALS:
        assert problems(checkpoint_signal=name) == []


# ---------------------------------------------------------------- 7. compute_target.time: parts in their range


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("5:99", ["99 seconds", "'6:39'", "7 minutes"]),  # sbatch 22.05: TimeLimit=00:07:00
        ("1:75:00", ["75 minutes", "'2:15:00'"]),
        ("0:00:60", ["60 seconds", "'0:01:00'"]),
        ("1-25", ["25 hours", "'2-01'"]),
        ("1-23:75", ["75 minutes", "'2-00:15'"]),
        ("1-0:0:61", ["61 seconds", "'1-00:01:01'", "1442 minutes"]),
        ("0", ["no limit at all", "UNLIMITED"]),
        ("0:00", ["no limit at all"]),
        ("soon", ["Slurm time"]),
    ],
)
def test_finding_7_a_time_whose_parts_overflow_is_refused_saying_what_sbatch_would_read(
    value: str, words: list[str]
) -> None:
    problem = refused("compute_target.time", *words, compute_target={"time": value})
    assert problem.value == value


@pytest.mark.parametrize("value", ["30", "90:00", "59:59", "1:59:59", "48:00:00", "1-23:59:59", "2-0", "UNLIMITED", 5])
def test_finding_7_a_time_in_range_is_taken(value: Any) -> None:
    assert problems(compute_target={"time": value}) == []


def test_finding_7_a_named_target_s_time_is_checked_too(tmp_path: Path) -> None:
    targets = tmp_path / "targets.yaml"
    targets.write_text("odd:\n  time: '5:99'\n")
    spec = validate({**ONE, "compute_target": "odd"}, REPO / "configs")
    with pytest.raises(ConfigError) as info:
        resolve_target(spec, [targets])
    assert [p.key for p in info.value.problems] == ["odd.time"] and "'6:39'" in info.value.problems[0].message


@pytest.mark.parametrize(
    ("text", "parts", "seconds"),
    [
        ("30", (0, 0, 30, 0), 1800),
        ("5:99", (0, 0, 5, 99), 399),
        ("1:02:03", (0, 1, 2, 3), 3723),
        ("2-1", (2, 1, 0, 0), 176400),
        ("2-1:30", (2, 1, 30, 0), 178200),
        ("UNLIMITED", None, None),
        ("1:2:3:4", None, None),
    ],
)
def test_time_parts_are_what_sbatch_adds_up(text: str, parts: tuple | None, seconds: int | None) -> None:
    assert time_parts(text) == parts and time_limit_seconds(text) == seconds


# ---------------------------------------------------------------- the real CLI

CLI_CASES = {
    "signal": (params(sig="USR1@5"), "compute_target.additional_parameters.sig", "'USR1@5'"),
    "roles": ({**PS, **role_params(accou="ml")}, "roles.worker.additional_parameters.accou", "'ml'"),
    "checkpoint_dir": ({"checkpoint_dir": "./logs"}, "checkpoint_dir", "'./logs'"),
    "lead": ({"max_run_duration_seconds": 60}, "checkpoint_lead_seconds + max_run_duration_seconds", "120"),
    "max_restarts": ({"max_restarts": {}}, "max_restarts", "{}"),
    "signal_name": ({"checkpoint_signal": "PWR"}, "checkpoint_signal", "'PWR'"),
    "time": ({"compute_target": {"time": "5:99"}}, "compute_target.time", "'5:99'"),
}


@pytest.mark.parametrize("finding", sorted(CLI_CASES))
def test_the_cli_refuses_each_finding_with_exit_2_and_writes_nothing(tmp_path: Path, finding: str) -> None:
    keys, key, value = CLI_CASES[finding]
    project = tmp_path / "proj"
    project.mkdir()
    (project / "train.py").write_text("print('hi')\n")
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps({**ONE, **TIMEOUT, **keys, "source_directory": str(project)}))
    runs = tmp_path / "runs"
    for command in (["validate", str(path)], ["submit", str(path), "--backend", "local", "--runs-dir", str(runs)]):
        proc = subprocess.run(
            [sys.executable, "-m", "hpc_tf", *command], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        line = next(ln for ln in proc.stderr.splitlines() if f"- {path}: {key}: " in ln)
        assert line.endswith(f"(got {value})"), line
    assert not runs.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "proj"]


def test_a_named_targets_time_under_the_lead_is_refused(tmp_path: Path) -> None:
    """A compute target named in a targets file brings its own `time`: the lead is checked against it too."""
    targets = tmp_path / "targets.yaml"
    targets.write_text("short:\n  time: '1'\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        json.dumps({"experiment": "x", "source_directory": str(tmp_path), "entry_script": "train.py",
                    "compute_target": "short", "requeue_on": ["timeout"], "checkpoint_lead_seconds": 120})
    )  # fmt: skip
    (tmp_path / "train.py").write_text("pass\n")
    env = {"HPC_TF_TARGETS": str(targets), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.run([sys.executable, "-m", "hpc_tf", "validate", str(cfg)], capture_output=True, text=True,
                          env=env, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "checkpoint_lead_seconds + compute_target.time" in proc.stderr and "120" in proc.stderr


@pytest.mark.parametrize("value", ["no", "yes", "on", "off", 1, "x"])
def test_a_value_on_an_sbatch_flag_option_is_refused(value: object) -> None:
    """`hold: no` is text in YAML 1.2 (not false): it would reach sbatch as `--hold=no`, which sbatch refuses
    ("doesn't allow an argument"). A flag takes true, false or null; an option with a value keeps its yes/no."""
    fields = {"additional_parameters": {"hold": value, "kill-on-invalid-dep": "yes"}}
    problems = convert(SlurmOptions, fields, None, "compute_target")[1]
    assert [p.key for p in problems] == ["compute_target.additional_parameters.hold"]
    assert "--hold takes no value" in problems[0].message
    assert convert(SlurmOptions, {"additional_parameters": {"hold": True, "kill-on-invalid-dep": "yes"}}, None)[1] == []
