"""Hostile strings through the keys requeue, roles and sweeps added (issue 19, item 4): every corpus string x every
new string-valued key, 0 executed.

The corpus and its markers are tests/test_hostile.py's (`tests/data/hostile-strings.json`; `PWNED` becomes a marker
path per string, and a string that ever runs as a command leaves that file behind). The keys:
- requeue (with requeue_on and max_run_duration_seconds set, so they are in force): checkpoint_dir,
  checkpoint_signal, a requeue_on entry, a max_restarts mapping key;
- roles (distributed_backend 'ps', the backend roles take; a role under 'multiworker' is refused): each string
  field of RoleOptions (partition, constraint, mem) for chief, ps, worker and evaluator, and each role's
  additional_parameters names and values;
- sweeps (`hyperdrive:`): a parameter's flag name, a choice value (in a list, and inside a call string), the
  expression object's type, primary_metric_name (and v2's objective.primary_metric), primary_metric_goal, the
  policy's text (the type, a bare policy string, text where a number goes), the sampling type (v1, v2's
  sampling_algorithm, the rule), and a sweep's metric_patterns names and patterns.

For every key and string, `validate` exits 0 or 2 without a traceback, and 2 names the key (and the file). A
valid config is read back (the spec holds the value exactly) and rendered as `render` does, for every backend
that applies: requeue keys for Slurm and local; roles as the heterogeneous job's script (one step across the
components, and one step per component, for a site with disable_hetjob_steps); a sweep as its first array's
script. Scripts are checked without trusting their text: `#SBATCH` lines are read component by component the way
sbatch 22.05 reads them (src/sbatch/opt.c: `#SBATCH hetjob` separators, `get_argument`) and must be exactly the
planned blocks, with the value intact in the block of its role; a key that never enters the script leaves it
byte-for-byte unchanged; the exec and module lines split with shlex are the plan; every other line is unchanged;
all scripts pass `bash -n` and run under bash with exec and module defused (tests/test_hostile.py's
`run_defused`). No marker may appear.

The in-job side of the same values: a checkpoint_dir is made inside the run directory by the task's runtime
(`checkpoint_environment`); a sweep's trial gets a hostile choice value (and flag name) as exactly one argv
element (`trial_command`, from trials.jsonl read back as the array task reads it, through job.json), its
HPC_TF_HPARAMS (and HPC_TF_HPARAMS_FILE) JSON gives it back, and HPC_TF_PRIMARY_METRIC is the metric's name;
for bayesian sampling, a sample of choice values through Optuna's journal (`bayesian.ask`).

Counts (strings x keys tried, valid, rendered, executed defused, markers found) are printed at the end of the
module and written to `hostile-surfaces-stats.json` in pytest's base temporary directory.
"""

from __future__ import annotations

import collections
import json
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import msgspec
import pytest

from hpc_tf._location import package_root
from hpc_tf.config.loading import load_config
from hpc_tf.core.envsize import HPARAMS, HPARAMS_FILE
from hpc_tf.core.plan import job_record, local_plan, slurm_plan
from hpc_tf.core.records import HetSteps, JobRecord, TrialInfo
from hpc_tf.core.slurm_options import option_name
from hpc_tf.core.spec import ROLE_NAMES
from hpc_tf.errors import ConfigError, HpcTfError
from hpc_tf.job.requeue import checkpoint_environment
from hpc_tf.rundir import RunDir
from hpc_tf.runs.render import render_script
from hpc_tf.runs.submit import prepare
from hpc_tf.sweeps.core.arrays import array_plan, trial_command, trial_run_id
from hpc_tf.sweeps.core.sampling import draw_trials
from hpc_tf.sweeps.core.spec import EXPR_KINDS, ParamExpr
from hpc_tf.sweeps.submit import first_script, new_record, prepare_sweep
from hpc_tf.sweeps.sweepdir import SweepDir
from hpc_tf.sweeps.trial import trial_environment

from . import test_hostile as suite
from .test_hostile import (
    RAW,
    TOKEN,
    Rendered,
    Space,
    base,
    other_lines,
    run_cli,
    safe,
    sample,
    shell_words,
    write_yaml,
)

space = suite.space  # the workspace fixture, this module's own instance: marker folder, settings, SLURM_CONF
MIN_STRINGS = 200  # issue 19, item 4: at least 200 hostile strings through every new key


def _variants(raw: list[str], wanted: int) -> list[str]:
    """More hostile strings when the corpus has fewer than `wanted`: each string as an option, after a command
    separator, inside double quotes and inside a command substitution (new strings only)."""
    seen, out = set(raw), []
    for s in raw:
        for text in (f"--{s}", f"x; {s}", f'"{s}"', f"$({s})", f"`{s}`"):
            if text not in seen:
                seen.add(text)
                out.append(text)
            if len(raw) + len(out) >= wanted:
                return out
    return out


STRINGS: list[str] = RAW + (_variants(RAW, MIN_STRINGS) if len(RAW) < MIN_STRINGS else [])

STATS: dict[str, Any] = {
    "corpus_strings": len(RAW),
    "strings": len(STRINGS),
    "keys": 0,
    "tried": 0,  # (key, string) pairs validated
    "valid": 0,
    "refused": 0,
    "scripts_rendered": 0,
    "scripts_executed_defused": 0,
    "in_job_checked": 0,  # checkpoint folders made, trials' argv and environment built
    "bayesian_trials": 0,
    "markers_found": 0,
    "problems": 0,
    "per_key": {},
}


def hostile(space: Space, i: int) -> str:
    return STRINGS[i].replace(TOKEN, f"{space.marks}/{TOKEN}-{i}")


def text_ok(value: str) -> bool:
    """What every free-text key must take: no newline, CR or NUL, and valid Unicode (no lone surrogate)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return safe(value)


def non_blank(value: str) -> bool:
    return text_ok(value) and bool(value.strip())


@pytest.fixture(scope="module", autouse=True)
def report(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    started = time.monotonic()
    yield
    STATS["seconds"] = round(time.monotonic() - started, 1)
    out = tmp_path_factory.getbasetemp() / "hostile-surfaces-stats.json"
    out.write_text(json.dumps(STATS, indent=1))
    capman = request.config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled():
        print(
            f"\ntest_hostile_surfaces: {STATS['strings']} hostile strings x {STATS['keys']} new keys: tried "
            f"{STATS['tried']} (valid {STATS['valid']}, refused {STATS['refused']}); scripts rendered "
            f"{STATS['scripts_rendered']}, executed defused {STATS['scripts_executed_defused']}; in-job checks "
            f"{STATS['in_job_checked']}, bayesian trials {STATS['bayesian_trials']}; executed (markers found) "
            f"{STATS['markers_found']}; problems {STATS['problems']}; {STATS['seconds']} s; stats: {out}"
        )


# --------------------------------------------------------------------------------------------------
# sbatch's reading of a heterogeneous job's script.

_C_SPACE = b" \t\n\v\f\r"


def _separator(rest: bytes, pos: int) -> int:
    """The length of a `hetjob`/`packjob` word (any case) at `pos` followed by the end or whitespace, else 0."""
    for word in (b"packjob", b"hetjob"):
        end = pos + len(word)
        if rest[pos:end].lower() == word and (end == len(rest) or rest[end] in _C_SPACE):
            return len(word)
    return 0


def _argument(rest: bytes, pos: int, line: str) -> tuple[str | None, int]:
    """sbatch 22.05's `get_argument` from `pos`: (the argument or None when the line has no more, where it ended)."""
    while pos < len(rest) and rest[pos] in _C_SPACE:
        pos += 1
    if _separator(rest, pos):
        return None, pos  # blanked: the copy loop starts on a space and returns nothing
    if pos < len(rest) and rest[pos] == ord(":"):
        raise ValueError(f"sbatch: unexpected ':' in {line!r}")
    arg, quote, escape, started = bytearray(), 0, False, False
    while pos < len(rest) and (quote or rest[pos] not in _C_SPACE):
        ch = rest[pos]
        if escape:
            escape = False
        elif ch == ord("\\"):
            escape, pos = True, pos + 1
            continue
        elif quote:
            if ch == quote:
                quote, pos = 0, pos + 1
                continue
        elif ch in (ord('"'), ord("'")):
            quote, pos = ch, pos + 1
            continue
        elif ch == ord("#"):
            break
        arg.append(ch)
        started = True
        pos += 1
    if quote:
        raise ValueError(f"sbatch: unmatched {chr(quote)} in {line!r}")
    return (arg.decode("utf-8", "surrogateescape") if started else None), pos


def sbatch_components(script: str) -> list[list[str]]:
    """The arguments sbatch 22.05 takes from a script's directives, one list per component (src/sbatch/opt.c
    `_opt_batch_script`, run once per component): lines starting with `#SBATCH` (or `#SLURM`); after the magic word
    and whitespace, `hetjob` or `packjob` (any case) followed by the end or whitespace starts the next component;
    arguments as `get_argument` reads them (quotes, backslash escapes, an unquoted `#` ends the line, an unmatched
    quote or an argument starting with ':' is fatal, an argument that is the separator word ends the line). Scanning
    stops at the first line that is not blank and not a comment; lines are split at `\\n` only."""
    blocks: list[list[str]] = [[]]
    for line in script.split("\n"):
        raw = line.encode("utf-8", "surrogateescape")
        magic = next((len(m) for m in (b"#SBATCH", b"#SLURM") if raw.startswith(m)), 0)
        if not magic:
            stripped = raw.lstrip(_C_SPACE)
            if stripped and not stripped.startswith(b"#"):
                break
            continue
        rest, pos = raw[magic:], 0
        while pos < len(rest) and rest[pos] in _C_SPACE:
            pos += 1
        if _separator(rest, pos):
            blocks.append([])
        while True:
            arg, pos = _argument(rest, pos, line)
            if arg is None:
                break
            blocks[-1].append(arg)
    return blocks


def planned(directives: list[tuple[str, str | None]]) -> list[str]:
    return [f"--{name}" if value is None else f"--{name}={value}" for name, value in directives]


def test_the_component_reader_reads_as_sbatch_does() -> None:
    """The reader against what opt.c does with separators, quotes, comments and a leading ':'."""
    script = (
        '#!/bin/bash\n#SBATCH --a=1 --b="x y" # c\n# comment\n#SBATCH   HetJob\n#SBATCH --c=\'#\' --d=\\"\n'
        "#SBATCH packjob --ignored\n#SBATCH --e hetjob --ignored\n#SBATCH --hetjob=1\nset -e\n#SBATCH --late\n"
    )
    assert sbatch_components(script) == [["--a=1", "--b=x y"], ["--c=#", '--d="'], ["--e", "--hetjob=1"]]
    with pytest.raises(ValueError, match="':'"):
        sbatch_components("#SBATCH --a :b\n")
    with pytest.raises(ValueError, match="unmatched"):
        sbatch_components('#SBATCH --a="b\n')
    plain = '#!/bin/bash\n#SBATCH --job-name="a b"\n#SBATCH --x\nexec true\n'
    assert sbatch_components(plain) == [suite.sbatch_arguments(plain)]


# --------------------------------------------------------------------------------------------------
# The keys.

SPACE = "hyperdrive.hyperparameter_sampling.parameter_space"
REQUEUE = {"requeue_on": ["timeout", "preemption"], "max_run_duration_seconds": 3600}
ROLES_JOB = {
    "distributed_backend": "ps",
    "worker_count": 1,
    "parameter_server_count": 1,
    "evaluator": True,
    "compute_target": {"mem": 1000},
    **REQUEUE,
}
COMPONENT = {role: index for index, role in enumerate(ROLE_NAMES)}  # every role has a task: one component each
CHOICE = {"type": "choice", "values": ["a", "b"]}
FIXED = {"--fixed": "1"}
_FRAGMENT = re.compile(rf"\s*({'|'.join(EXPR_KINDS)})\s*\(")


@dataclass(frozen=True)
class Surface:
    name: str  # the key as the user writes it (NAME: the value is the key itself)
    build: Callable[[Any], dict[str, Any]]  # the whole config for one value
    kind: str  # "job" (Slurm and local), "roles" (the heterogeneous job), "sweep" (its array script)
    control: Any  # a value the key takes, for the baseline script (None: the key takes no value at all)
    named: tuple[str, ...]  # what a refusal names (one of them)
    expect: Callable[[str], tuple[int, str]] | None = None  # (component, sbatch argument) it becomes; None: none
    accepts: Callable[[str], bool] | None = None  # values validate must take (None: no claim)
    holds: Callable[[Any, Any, str], bool] | None = None  # whether the (spec, sweep) read back hold the value
    in_job: str = ""  # "checkpoint": the runtime's folder; "trial": the trial's argv and environment


def _sweep(job: dict[str, Any] | None = None, drop: tuple[str, ...] = (), **block: Any) -> dict[str, Any]:
    """A grid sweep of 2 trials over --x (choice a, b) with a bandit policy; `block` replaces its keys."""
    hd: dict[str, Any] = {
        "hyperparameter_sampling": {"type": "grid", "parameter_space": {"--x": CHOICE}},
        "primary_metric_name": "m",
        "primary_metric_goal": "maximize",
        "max_total_runs": 2,
        "policy": {"type": "bandit", "slack_factor": 0.1},
    }
    hd.update(block)
    for key in drop:
        hd.pop(key)
    return base(**{"script_params": FIXED, "metric_patterns": {"m": "m=(.*)"}, **(job or {})}, hyperdrive=hd)


def _sampling(**over: Any) -> dict[str, Any]:
    return {"type": "grid", "parameter_space": {"--x": CHOICE}, **over}


def _roles(role: str, options: dict[str, Any]) -> dict[str, Any]:
    roles: dict[str, Any] = {name: {} for name in ROLE_NAMES}
    roles[role] = options
    return base(**ROLES_JOB, roles=roles)


def _flag(name: str) -> str:
    return name if name.startswith("-") else f"--{name}"


def _choice_value(value: str) -> bool:
    """A choice value in a YAML list: any text but a call string that YAML's flow syntax split (README)."""
    return text_ok(value) and value != "b" and not (_FRAGMENT.match(value) and value.count("(") != value.count(")"))


def _role_surfaces() -> list[Surface]:
    out = []
    for role in ROLE_NAMES:
        c = COMPONENT[role]
        at = f"roles.{role}"
        for name in ("partition", "constraint"):
            out.append(
                Surface(
                    f"{at}.{name}",
                    lambda v, role=role, name=name: _roles(role, {name: v}),
                    "roles",
                    "c1",
                    (f"{at}.{name}",),
                    expect=lambda v, c=c, name=name: (c, f"--{name}={v}"),
                    accepts=text_ok,
                    holds=lambda s, _, v, role=role, name=name: getattr(s.roles[role], name) == v,
                )
            )
        out += [
            Surface(
                f"{at}.mem",
                lambda v, role=role: _roles(role, {"mem": v}),
                "roles",
                "2000",
                (f"{at}.mem",),
                expect=lambda v, c=c: (c, f"--mem={v}"),
                holds=lambda s, _, v, role=role: s.roles[role].mem == v,
            ),
            Surface(
                f"{at}.additional_parameters.NAME",
                lambda v, role=role: _roles(role, {"additional_parameters": {v: "x"}}),
                "roles",
                "prefer",
                (f"{at}.additional_parameters",),
                expect=lambda v, c=c: (c, f"--{option_name(v)}=x"),
                holds=lambda s, _, v, role=role: list(s.roles[role].additional_parameters) == [v],
            ),
            Surface(
                f"{at}.additional_parameters.prefer",
                lambda v, role=role: _roles(role, {"additional_parameters": {"prefer": v}}),
                "roles",
                "x",
                (f"{at}.additional_parameters.prefer",),
                expect=lambda v, c=c: (c, f"--prefer={v}"),
                accepts=text_ok,
                holds=lambda s, _, v, role=role: s.roles[role].additional_parameters == {"prefer": v},
            ),
        ]
    return out


SURFACES: list[Surface] = [
    # requeue (in force: requeue_on with the time limit's and preemption's warning)
    Surface(
        "checkpoint_dir",
        lambda v: base(**REQUEUE, checkpoint_dir=v),
        "job",
        "checkpoints",
        ("checkpoint_dir",),
        holds=lambda s, _, v: s.checkpoint_dir == v,
        in_job="checkpoint",
    ),
    Surface(
        "checkpoint_signal",
        lambda v: base(**REQUEUE, checkpoint_signal=v),
        "job",
        "USR1",
        ("checkpoint_signal",),
        expect=lambda v: (0, f"--signal={v}@120"),
        holds=lambda s, _, v: s.checkpoint_signal == v,
    ),
    Surface(
        "requeue_on[1]",
        lambda v: base(requeue_on=["timeout", v], max_run_duration_seconds=3600),
        "job",
        "node_failure",
        ("requeue_on",),
        expect=lambda v: (0, "--requeue"),
        holds=lambda s, _, v: s.requeue_on == ["timeout", v],
    ),
    Surface(
        "max_restarts.KEY",
        lambda v: base(**REQUEUE, max_restarts={"timeout": 3, "preemption": 3, v: 1}),
        "job",
        "node_failure",
        ("max_restarts",),
        holds=lambda s, _, v: s.max_restarts == {"timeout": 3, "preemption": 3, v: 1},
    ),
    # roles
    *_role_surfaces(),
    Surface(
        "roles.worker.partition [multiworker]",
        lambda v: base(distributed_backend="multiworker", node_count=2, roles={"worker": {"partition": v}}),
        "roles",
        None,  # no baseline: refused whatever the value
        ("roles: only used with distributed_backend 'ps'",),
        accepts=lambda v: False,  # roles are 'ps' only: always refused, naming roles
    ),
    # sweeps
    Surface(
        f"{SPACE}.FLAG",
        lambda v: _sweep(hyperparameter_sampling=_sampling(parameter_space={v: CHOICE})),
        "sweep",
        "--y",
        (SPACE,),
        holds=lambda _, sw, v: list(sw.parameter_space) == [_flag(v)],
        in_job="trial",
    ),
    Surface(
        f"{SPACE}.--x.values[0]",
        lambda v: _sweep(hyperparameter_sampling=_sampling(parameter_space={"--x": {**CHOICE, "values": [v, "b"]}})),
        "sweep",
        "a",
        (f"{SPACE}.--x",),
        accepts=_choice_value,
        holds=lambda _, sw, v: sw.parameter_space["--x"].values == (v, "b"),
        in_job="trial",
    ),
    Surface(
        f"{SPACE}.--x [call string]",
        lambda v: _sweep(hyperparameter_sampling=_sampling(parameter_space={"--x": f"choice({v!r}, 'b')"})),
        "sweep",
        "a",
        (f"{SPACE}.--x",),
        accepts=lambda v: text_ok(v) and v != "b" and len(f"choice({v!r}, 'b')") <= 10_000,
        holds=lambda _, sw, v: sw.parameter_space["--x"].values == (v, "b"),
        in_job="trial",
    ),
    Surface(
        f"{SPACE}.--x.type",
        lambda v: _sweep(hyperparameter_sampling=_sampling(parameter_space={"--x": {**CHOICE, "type": v}})),
        "sweep",
        "Choice",
        (f"{SPACE}.--x",),
        holds=lambda _, sw, v: sw.parameter_space["--x"].kind == "choice",
    ),
    Surface(
        "hyperdrive.primary_metric_name",
        lambda v: _sweep(primary_metric_name=v),
        "sweep",
        "loss",
        ("hyperdrive.primary_metric_name",),
        accepts=non_blank,
        holds=lambda _, sw, v: sw.primary_metric_name == v,
        in_job="trial",
    ),
    Surface(
        "hyperdrive.objective.primary_metric",
        lambda v: _sweep(
            drop=("primary_metric_name", "primary_metric_goal"), objective={"primary_metric": v, "goal": "maximize"}
        ),
        "sweep",
        "loss",
        ("hyperdrive.objective.primary_metric",),
        accepts=non_blank,
        holds=lambda _, sw, v: sw.primary_metric_name == v,
    ),
    Surface(
        "hyperdrive.primary_metric_goal",
        lambda v: _sweep(primary_metric_goal=v),
        "sweep",
        "PrimaryMetricGoal.MINIMIZE",
        ("hyperdrive.primary_metric_goal",),
        holds=lambda _, sw, v: sw.primary_metric_goal in ("maximize", "minimize"),
    ),
    Surface(
        "hyperdrive.policy.type",
        lambda v: _sweep(policy={"type": v, "slack_factor": 0.1}),
        "sweep",
        "BanditPolicy",
        ("hyperdrive.policy",),
        holds=lambda _, sw, v: sw.policy is not None and sw.policy.type == "bandit",
    ),
    Surface(
        "hyperdrive.policy",
        lambda v: _sweep(policy=v),
        "sweep",
        "NoTerminationPolicy",
        ("hyperdrive.policy",),
        holds=lambda _, sw, v: sw.policy is None or sw.policy.type == "median_stopping",
    ),
    Surface(
        "hyperdrive.policy.slack_factor",
        lambda v: _sweep(policy={"type": "bandit", "slack_factor": v}),
        "sweep",
        0.1,
        ("hyperdrive.policy.slack_factor",),
        accepts=lambda v: False,  # text is no number
    ),
    Surface(
        "hyperdrive.policy.evaluation_interval",
        lambda v: _sweep(policy={"type": "median_stopping", "evaluation_interval": v}),
        "sweep",
        2,
        ("hyperdrive.policy.evaluation_interval",),
        accepts=lambda v: False,
    ),
    Surface(
        "hyperdrive.hyperparameter_sampling.type",
        lambda v: _sweep(hyperparameter_sampling=_sampling(type=v)),
        "sweep",
        "GridParameterSampling",
        ("hyperdrive.hyperparameter_sampling.type",),
        holds=lambda _, sw, v: sw.sampling in ("random", "grid", "bayesian"),
    ),
    Surface(
        "hyperdrive.sampling_algorithm",
        lambda v: _sweep(drop=("hyperparameter_sampling",), sampling_algorithm=v, search_space={"--x": CHOICE}),
        "sweep",
        "grid",
        ("hyperdrive.sampling_algorithm",),
        holds=lambda _, sw, v: sw.sampling in ("random", "grid", "bayesian"),
    ),
    Surface(
        "hyperdrive.hyperparameter_sampling.rule",
        lambda v: _sweep(hyperparameter_sampling=_sampling(type="random", seed=1, rule=v)),
        "sweep",
        "Random",
        ("hyperdrive.hyperparameter_sampling.rule",),
        holds=lambda _, sw, v: sw.sampling == "random",
    ),
    Surface(
        "metric_patterns.NAME [sweep]",
        lambda v: _sweep({"metric_patterns": {v: "m=(.*)"}}, primary_metric_name=v),
        "sweep",
        "val_loss",
        ("metric_patterns", "hyperdrive.primary_metric_name"),
        accepts=non_blank,
        holds=lambda s, sw, v: list(s.metric_patterns) == [v] and sw.primary_metric_name == v,
        in_job="trial",
    ),
    Surface(
        "metric_patterns.m [sweep]",
        lambda v: _sweep({"metric_patterns": {"m": v}}),
        "sweep",
        r"m: (\S+)",
        ("metric_patterns.m",),
        holds=lambda s, _, v: s.metric_patterns == {"m": v},
    ),
]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


# --------------------------------------------------------------------------------------------------
# Rendering as `render` does, and what each script must be.


@dataclass
class Out:
    variant: str  # "slurm", "local", "slurm per_component", "slurm array"
    script: str
    blocks: list[list[str]] | None  # the planned #SBATCH arguments of each component; None: no directives
    launch: list[str]
    modules: list[str] = field(default_factory=list)


def render(space: Space, kind: str, config: Path) -> tuple[Any, Any, list[Out]]:
    """(spec, sweep, the scripts `render` gives for the backends that apply, with their plans)."""
    settings = space.settings
    spec, sweep, key = load_config(config)
    as_root = os.geteuid() == 0
    if kind == "sweep":
        assert sweep is not None
        swept = prepare_sweep(spec, sweep, settings, "slurm", False, key)  # as `render` does (cli.config_cmds)
        record = new_record(swept, "<sweep id>", 0, None, "")
        chunk = record.chunks[0]
        options = swept.target.options
        plan = array_plan(
            spec, options, sys.executable, package_root(), chunk, record.max_concurrent_runs, None, as_root
        )
        out = [Out("slurm array", first_script(swept, settings), [planned(plan.directives)], plan.launch)]
        return spec, sweep, out
    sub = prepare(spec, settings, "slurm", probe=False)
    options = sub.target.options
    if kind == "roles":
        outs = []
        het_steps: tuple[HetSteps, ...] = ("one", "per_component")  # a site with disable_hetjob_steps: the second
        for steps in het_steps:
            plan = slurm_plan(spec, options, sys.executable, package_root(), as_root, steps)
            script = (
                sub.script
                if steps == "one"
                else render_script(plan, settings.template_dir, str(settings.template_cache))
            )
            blocks = [planned(block) for _, block in plan.components]
            outs.append(Out(f"slurm {steps}", script, blocks, plan.launch, list(spec.modules)))
        return spec, sweep, outs
    slurm = slurm_plan(spec, options, sys.executable, package_root(), as_root)
    local = local_plan(spec, sys.executable, package_root(), as_root)
    local_script = prepare(spec, settings, "local", probe=False).script
    return (
        spec,
        sweep,
        [
            Out("slurm", sub.script, [planned(slurm.directives)], slurm.launch, list(spec.modules)),
            Out("local", local_script, None, local.launch, list(spec.modules)),
        ],
    )


def check_out(surface: Surface, value: str, out: Out, baseline: str) -> list[str]:
    """The value reaches the script only as the planned, quoted #SBATCH argument of its component (or not at all)."""
    where = surface.expect(value) if surface.expect is not None and out.blocks is not None else None
    if where is None:
        return [] if out.script == baseline else ["the script changed although this key never enters it"]
    problems = []
    if other_lines(out.script) != other_lines(baseline):
        problems.append("lines other than #SBATCH / exec / module load changed")
    try:
        blocks: list[list[str]] = sbatch_components(out.script)
    except ValueError as exc:
        blocks = [[str(exc)]]
    if blocks != out.blocks:
        problems.append(f"sbatch reads {blocks!r}, planned {out.blocks!r}")
    component, argument = where
    if component >= len(blocks) or argument not in blocks[component]:
        problems.append(f"sbatch does not read {argument[:200]!r} in component {component}")
    execs = shell_words(out.script, "exec ")
    if execs != [["exec", *out.launch]]:
        problems.append(f"exec line reads {execs!r}, planned {out.launch!r}")
    modules = shell_words(out.script, "module load ")
    if modules != [["module", "load", m] for m in out.modules]:
        problems.append(f"module lines read {modules!r}")
    return problems


def baseline_problems(out: Out) -> list[str]:
    """The baseline script itself: sbatch reads the planned blocks, the exec line is the plan."""
    problems = []
    if out.blocks is not None and sbatch_components(out.script) != out.blocks:
        problems.append(f"baseline [{out.variant}]: sbatch reads {sbatch_components(out.script)!r}, not the plan")
    if shell_words(out.script, "exec ") != [["exec", *out.launch]]:
        problems.append(f"baseline [{out.variant}]: the exec line is not the plan")
    return problems


def run_defused(space: Space, rendered: list[Rendered], label: str) -> list[str]:
    """tests/test_hostile.py's run_defused, its own counter left as it was (this module counts its own)."""
    before = suite.STATS["scripts_executed_defused"]
    try:
        return suite.run_defused(space, rendered, label)
    finally:
        suite.STATS["scripts_executed_defused"] = before


def markers(space: Space) -> list[str]:
    """Marker files anywhere in the workspace (the in-job checks make folders named by hostile strings, never files
    named PWNED or PWNED-<n>), or in the marker folder."""
    found = space.markers()
    found += [
        str(p)
        for p in space.root.rglob(f"{TOKEN}*")
        if (p.name == TOKEN or re.fullmatch(rf"{TOKEN}-\d+", p.name)) and not p.is_dir()
    ]
    return sorted(set(found))


# --------------------------------------------------------------------------------------------------
# The in-job side: the checkpoint folder, a trial's argv and environment.


def checkpoint_problems(spec: Any, value: str, folder: Path) -> list[str]:
    """The task's runtime makes the checkpoint folder inside the run directory, as job.json gives it."""
    run = RunDir(folder)
    run.path.mkdir(parents=True)
    run.write_job(job_record(spec, run.run_id, "slurm", sys.executable))
    job = run.read_job()
    if job.checkpointing.checkpoint_dir != value:
        return [f"job.json gives checkpoint_dir {job.checkpointing.checkpoint_dir!r}"]
    try:
        env = checkpoint_environment(run, job, 0)
    except OSError as exc:
        return [f"the task's runtime cannot make the checkpoint folder: {type(exc).__name__}: {exc}"]
    made = Path(env["HPC_TF_CHECKPOINT_DIR"])
    if made != run.path / value or not made.is_dir():
        return [f"HPC_TF_CHECKPOINT_DIR is {str(made)[:200]!r}"]
    if run.path.resolve() not in made.resolve().parents:
        return [f"the checkpoint folder {str(made.resolve())[:200]!r} is outside the run directory"]
    return []


def trial_problems(space: Space, spec: Any, sweep: Any, surface: Surface, value: str, folder: Path) -> list[str]:
    """Every trial of the sweep as its array task makes it: hyperparameters from trials.jsonl, the argv
    (trial_command) and job.json, HPC_TF_HPARAMS in the environment and in its file."""
    sub = prepare_sweep(spec, sweep, space.settings, "slurm", False, "hyperdrive")
    folder.mkdir(parents=True)
    sweep_dir = SweepDir(folder / "sweep")
    sweep_dir.path.mkdir()
    record = new_record(sub, sweep_dir.sweep_id, 1, None, sys.executable)
    sweep_dir.write(record, durable=False)
    drawn = draw_trials(sweep, record.seed)
    sweep_dir.write_trials(drawn)
    try:
        trials = sweep_dir.read_trials()
    except HpcTfError as exc:
        return [f"the array task cannot read trials.jsonl: {exc}"]
    if trials != drawn:
        return [f"trials.jsonl reads back {trials!r}, drawn {drawn!r}"]
    problems = []
    argvs = []
    for index, hyperparameters in enumerate(trials):
        argv = trial_command(record.entry, record.script_params, hyperparameters)
        params = {**FIXED, **hyperparameters}
        expected = [*record.entry, *(w for k, v in params.items() for w in (k, str(v)))]
        if argv != expected:
            problems.append(f"trial {index}: argv {argv!r}, expected {expected!r}")
        run = RunDir(folder / trial_run_id(sweep_dir.sweep_id, index))
        run.path.mkdir()
        info = TrialInfo(
            sweep_id=sweep_dir.sweep_id, sweep_dir=str(sweep_dir.path), index=index, hyperparameters=hyperparameters
        )
        run.write_job(
            JobRecord(run_id=run.run_id, experiment="e", backend="slurm", python="p", command=argv, trial=info)
        )
        job = run.read_job()
        if job.command != argv or job.trial is None or job.trial.hyperparameters != hyperparameters:
            problems.append(f"trial {index}: job.json reads back {job.command!r}")
        env = trial_environment(job, run)
        if json.loads(env[HPARAMS]) != hyperparameters:
            problems.append(f"trial {index}: HPC_TF_HPARAMS {env[HPARAMS][:200]!r}")
        if env["HPC_TF_PRIMARY_METRIC"] != sweep.primary_metric_name:
            problems.append(f"trial {index}: HPC_TF_PRIMARY_METRIC {env['HPC_TF_PRIMARY_METRIC'][:200]!r}")
        in_file = trial_environment(job, run, limit=0)
        if json.loads(Path(in_file[HPARAMS_FILE]).read_text(encoding="utf-8")) != hyperparameters:
            problems.append(f"trial {index}: the HPC_TF_HPARAMS_FILE does not give the hyperparameters back")
        argvs.append(job.command)
    flag = _flag(value) if surface.name.endswith(".FLAG") else "--x"
    if surface.name.endswith(("values[0]", "[call string]")):
        pairs = [(a[i], a[i + 1]) for a in argvs for i in range(len(a) - 1)]
        if (flag, value) not in pairs:
            problems.append(f"no trial's argv has {flag} followed by exactly the value")
    after = len(record.entry)  # the entry script's own argv (its interpreter's -u among it)
    if surface.name.endswith(".FLAG") and sum(a[after:].count(flag) for a in argvs) != len(argvs):
        problems.append(f"the flag {flag!r} is not one argv element of every trial")
    return problems


# --------------------------------------------------------------------------------------------------
# Every string through every key.


def test_the_corpus_is_big_enough() -> None:
    assert len(STRINGS) >= MIN_STRINGS and len(set(STRINGS)) == len(STRINGS)
    assert len({s.name for s in SURFACES}) == len(SURFACES)


@pytest.mark.parametrize("surface", SURFACES, ids=[s.name for s in SURFACES])
def test_every_hostile_string_through_every_new_key(space: Space, surface: Surface) -> None:
    keydir = space.root / "surfaces" / _slug(surface.name)
    (keydir / "src").mkdir(parents=True)
    (keydir / "src" / "train.py").write_text("print('hi')\n")
    base_outs: list[Out] = []
    if surface.control is not None:
        base_config = write_yaml(keydir / "base.yaml", surface.build(surface.control))
        base_result = run_cli(["validate", str(base_config)])
        assert base_result.code == 0, base_result.stderr or base_result.escaped
        _, _, base_outs = render(space, surface.kind, base_config)
    problems = [p for out in base_outs for p in baseline_problems(out)]
    baseline = {out.variant: out.script for out in base_outs}
    rendered = [Rendered(f"baseline [{o.variant}]", o.script, [*o.modules, *o.launch]) for o in base_outs]
    counts: collections.Counter[str] = collections.Counter()
    for i in range(len(STRINGS)):
        value = hostile(space, i)
        label = f"[{i}] {value[:80]!r}"
        config = write_yaml(keydir / f"c{i}.yaml", surface.build(value))
        counts["tried"] += 1
        result = run_cli(["validate", str(config)])
        if result.escaped or "Traceback" in result.stderr or result.code not in (0, 2):
            problems.append(f"{label}: validate exit {result.code}: {(result.escaped or result.stderr)[-800:]}")
            continue
        if result.code == 2:
            counts["refused"] += 1
            if not result.stderr.startswith("hpc_tf: error:") or str(config) not in result.stderr:
                problems.append(f"{label}: the message does not start right or name the file: {result.stderr[:300]}")
            if not any(f"{name}" in result.stderr for name in surface.named):
                problems.append(f"{label}: refused without naming {surface.named[0]}: {result.stderr[-300:]}")
            if surface.accepts is not None and surface.accepts(value):
                problems.append(f"{label}: refused: {result.stderr.strip()[-300:]}")
            continue
        counts["valid"] += 1
        if not text_ok(value):
            problems.append(f"{label}: accepted a value with a newline, CR, NUL or a lone surrogate")
        try:
            spec, sweep, outs = render(space, surface.kind, config)
        except ConfigError as exc:
            problems.append(f"{label}: validate accepted it, render refused it: {exc}")
            continue
        except Exception:
            problems.append(f"{label}: render raised:\n{traceback.format_exc()[-800:]}")
            continue
        if surface.holds is not None and not surface.holds(spec, sweep, value):
            problems.append(f"{label}: the config does not read back as written")
        for out in outs:
            problems += [f"{label} [{out.variant}]: {p}" for p in check_out(surface, value, out, baseline[out.variant])]
            rendered.append(Rendered(f"{label} [{out.variant}]", out.script, [*out.modules, *out.launch]))
        try:
            if surface.in_job == "checkpoint":
                problems += [f"{label}: {p}" for p in checkpoint_problems(spec, value, keydir / "runs" / f"r{i}")]
            elif surface.in_job == "trial":
                found = trial_problems(space, spec, sweep, surface, value, keydir / "sweeps" / f"s{i}")
                problems += [f"{label}: {p}" for p in found]
        except Exception:
            problems.append(f"{label}: the in-job side raised:\n{traceback.format_exc()[-800:]}")
        counts["in_job"] += bool(surface.in_job)
    problems += run_defused(space, rendered, surface.name)
    found = markers(space)
    if found:
        problems.append(f"marker files appeared (a value ran as a command): {found[:20]}")
    STATS["keys"] += 1
    STATS["per_key"][surface.name] = dict(counts, scripts=len(rendered), problems=len(problems))
    for name in ("tried", "valid", "refused"):
        STATS[name] += counts[name]
    STATS["in_job_checked"] += counts["in_job"]
    STATS["scripts_rendered"] += len(rendered)
    STATS["scripts_executed_defused"] += len(rendered)
    STATS["markers_found"] += len(found)
    STATS["problems"] += len(problems)
    assert counts["tried"] == len(STRINGS)
    assert not problems, f"{len(problems)} problems for {surface.name}:\n" + "\n".join(problems[:25])


def test_bayesian_trials_get_hostile_choices_exactly(space: Space, tmp_path: Path) -> None:
    """A sample of choice values (every category, the 10 KB string) as a bayesian sweep's only choice: Optuna's
    journal gives each back, and the trial's argv holds it as one element."""
    from hpc_tf.sweeps import bayesian  # optuna is in the test extra: missing, this fails

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("pass\n")
    problems = []
    picked = [i for i in sample(24) if i < len(STRINGS)]
    for i in picked:
        value = hostile(space, i)
        space_ = {"--x": {"type": "choice", "values": [value]}}
        config = write_yaml(
            tmp_path / f"b{i}.yaml",
            _sweep(hyperparameter_sampling={"type": "bayesian", "seed": 3, "parameter_space": space_}),
        )
        spec, sweep, _ = load_config(config)
        assert sweep is not None
        sub = prepare_sweep(spec, sweep, space.settings, "slurm", False, "hyperdrive")
        sweep_dir = SweepDir(tmp_path / f"sweep{i}")
        sweep_dir.path.mkdir()
        sweep_dir.write(new_record(sub, sweep_dir.sweep_id, 3, None, sys.executable), durable=False)
        record = sweep_dir.read()
        expressions = {flag: msgspec.convert(e, ParamExpr) for flag, e in record.parameter_space.items()}
        _, params = bayesian.ask(sweep_dir.path, record.sweep_id, expressions, "maximize", 3, 0, lambda _: True)
        argv = trial_command(record.entry, record.script_params, params)
        if params != {"--x": value} or argv[-2:] != ["--x", value]:
            problems.append(f"[{i}] {value[:80]!r}: Optuna gave {params!r}, argv {argv[-2:]!r}")
        STATS["bayesian_trials"] += 1
    assert not list(space.marks.iterdir())
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------------------------------
# Regressions: what the corpus found.


@pytest.mark.parametrize("value", ["c1\x85next-line", "\u2028line-sep", "\u2029para-sep", "a\x1cb\x0bc"])
def test_trials_jsonl_reads_back_choice_values_with_unicode_line_breaks(tmp_path: Path, value: str) -> None:
    """Found by the corpus: trials.jsonl holds U+0085, U+2028 and U+2029 as they are (msgspec; JSON allows them),
    and `str.splitlines()` cut the line there, so every array task of the sweep failed with "trials.jsonl is
    damaged (line 1)". Lines end at "\\n" alone."""
    sweep_dir = SweepDir(tmp_path)
    drawn: list[dict[str, Any]] = [{"--x": value}, {"--x": "b", "--y": 1}]
    sweep_dir.write_trials(drawn)
    assert sweep_dir.read_trials() == drawn
    argv = trial_command(["python", "-u", "train.py"], FIXED, sweep_dir.read_trials()[0])
    assert argv[-2:] == ["--x", value]


def test_trials_jsonl_cut_short_is_still_damaged(tmp_path: Path) -> None:
    """A last line without its newline (a file cut short) is read, and named when it is not JSON."""
    sweep_dir = SweepDir(tmp_path)
    sweep_dir.write_trials([{"--x": "a"}])
    sweep_dir.trials_jsonl.write_text(sweep_dir.trials_jsonl.read_text() + '{"trial": 1, "hyper')
    with pytest.raises(HpcTfError, match=r"damaged \(line 2\)"):
        sweep_dir.read_trials()
    sweep_dir.trials_jsonl.write_text("")
    assert sweep_dir.read_trials() == []


@pytest.mark.parametrize(
    ("value", "ok"),
    [("x" * 255, True), ("x" * 256, False), ("a/" + "é" * 128, False), ("/".join(["d" * 200] * 21), False)],
    ids=["name-255", "name-256", "name-256-bytes", "path-4220"],
)
def test_checkpoint_dir_longer_than_a_folder_can_be_is_refused(space: Space, value: str, ok: bool) -> None:
    """Found by the corpus: a checkpoint_dir with a name over 255 bytes (NAME_MAX) validated, and every task then
    failed making the folder (OSError: File name too long). validate refuses it (exit 2, naming the key), as it
    does a path of PATH_MAX bytes or more; a 255-byte name is made."""
    folder = space.root / "regressions" / f"checkpoint-{len(value)}-{ok}"
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "train.py").write_text("pass\n")
    config = write_yaml(folder / "c.yaml", base(**REQUEUE, checkpoint_dir=value))
    result = run_cli(["validate", str(config)])
    assert result.escaped is None
    if not ok:
        assert result.code == 2 and "checkpoint_dir: too long for a folder" in result.stderr, result.stderr
        return
    assert result.code == 0, result.stderr
    spec, _, _ = load_config(config)
    assert checkpoint_problems(spec, value, folder / "run") == []
