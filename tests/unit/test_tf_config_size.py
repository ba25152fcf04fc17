"""Issue 18, item 8: a TF_CONFIG too long for one environment string (Linux's MAX_ARG_STRLEN, 131072 bytes with its
NUL) still reaches the entry script, through a file in the run directory that the script's interpreter reads back
into os.environ (hpc_tf/job/child_site/sitecustomize.py); every other variable is checked against the same limit."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from hpc_tf.core.envsize import MAX_ARG_STRLEN, TF_CONFIG_FILE, env_string_bytes, oversized, tf_config_in_env
from hpc_tf.core.records import JobRecord, TaskRecord
from hpc_tf.core.tfcluster import Slot, task_slots, tf_config
from hpc_tf.job import runtime
from hpc_tf.job.context import TaskSetupError
from hpc_tf.rundir import RunDir

JOB = JobRecord(run_id="r", experiment="e", backend="slurm", python=sys.executable, command=[],
                distributed_backend="multiworker")  # fmt: skip
CHILD = """
import json, os, subprocess
config = json.loads(os.environ["TF_CONFIG"])
shell = subprocess.run(["sh", "-c", 'echo "${#TF_CONFIG}"'], capture_output=True, text=True).stdout.strip()
python = subprocess.run([os.sys.executable, "-c", "import os; print(len(os.environ['TF_CONFIG']))"],
                        capture_output=True, text=True).stdout.strip()
print(json.dumps({"task": config["task"], "workers": len(config["cluster"]["worker"]), "shell": shell,
                  "python": python, "bytes": len(os.environ["TF_CONFIG"])}))
"""


def slots_for(ntasks: int, per_node: int = 4) -> list[Slot]:
    """A 'multiworker' job as Slurm would place it: Cray-style node names, `per_node` tasks on each."""
    nodes = [f"nid{i:06d}" for i in range(1, ntasks // per_node + 1)]
    return task_slots("multiworker", nodes, [per_node] * len(nodes), 0, job_id=123456)


def environment(run: RunDir, job: JobRecord, slots: list[Slot], rank: int) -> dict[str, str]:
    """The entry script's environment as the runtime builds it (minus the trial and checkpoint variables)."""
    env = runtime.child_environment({"PATH": os.environ["PATH"], "TF_CONFIG": "{}"}, job, run, rank)
    env.update(runtime.task_environment(job, slots, slots[rank], env, run))
    return runtime.with_child_site(env)


@pytest.mark.parametrize(
    "ntasks, limit, way",
    [
        (4, MAX_ARG_STRLEN, "env"),
        (6_000, MAX_ARG_STRLEN, "env"),  # ~114 KB
        (8_192, MAX_ARG_STRLEN, "file"),  # ~156 KB: execve would refuse it
        (4, 100, "file"),  # the setting lowered (HPC_TF_TF_CONFIG_ENV_MAX), as the cluster test does
        (4, 0, "file"),
    ],
)
def test_a_tf_config_too_long_for_the_environment_goes_through_a_file(
    tmp_path: Path, ntasks: int, limit: int, way: str
) -> None:
    run, job = RunDir(tmp_path), msgspec.structs.replace(JOB, tf_config_env_max=limit)
    slots = slots_for(ntasks)
    rank = ntasks - 1
    env = environment(run, job, slots, rank)
    text = json.dumps(tf_config(slots, rank))
    assert (env_string_bytes("TF_CONFIG", text) > MAX_ARG_STRLEN) == (ntasks == 8_192)
    if way == "env":
        assert env["TF_CONFIG"] == text and TF_CONFIG_FILE not in env and not run.tasks_dir.exists()
        assert str(runtime.CHILD_SITE) not in env.get("PYTHONPATH", "")  # no keras alias wanted here either
        return
    assert "TF_CONFIG" not in env  # the inherited one is dropped: the file's is this task's
    assert env[TF_CONFIG_FILE] == str(run.tf_config_file(rank)) == str(tmp_path / "tasks" / f"tf-config-{rank}.json")
    assert json.loads(run.tf_config_file(rank).read_text()) == tf_config(slots, rank)
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(runtime.CHILD_SITE)
    runtime.check_env_sizes(env, job)  # what is left fits


def test_the_kernel_refuses_the_long_string_and_the_file_reaches_the_script(tmp_path: Path) -> None:
    """The real 128 KiB case, with real execve: 8,192 tasks' TF_CONFIG in the environment is E2BIG; through the
    file the script sees it in os.environ, a program it starts does not inherit the long string (so it can start),
    and a Python program it starts gets it back the same way."""
    run, slots = RunDir(tmp_path), slots_for(8_192)
    env = environment(run, JOB, slots, 5)
    text = run.tf_config_file(5).read_text()
    assert len(text) > MAX_ARG_STRLEN
    with pytest.raises(OSError) as refused:
        subprocess.run([sys.executable, "-c", "pass"], env={**env, "TF_CONFIG": text})
    assert refused.value.errno == errno.E2BIG  # "Argument list too long"
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen == {"task": {"type": "worker", "index": 5}, "workers": 8_192, "shell": "0",
                    "python": str(len(text)), "bytes": len(text)}  # fmt: skip


def test_the_limit_is_the_kernel_s_to_the_byte(tmp_path: Path) -> None:
    """MAX_ARG_STRLEN counts `NAME=value` and its NUL: 131072 bytes start, one more does not."""
    fits = "x" * (MAX_ARG_STRLEN - len("BIG=") - 1)
    assert env_string_bytes("BIG", fits) == MAX_ARG_STRLEN and not oversized({"BIG": fits})
    assert tf_config_in_env("x" * (100 - len("TF_CONFIG=") - 1), 100)
    assert not tf_config_in_env("x" * (100 - len("TF_CONFIG=")), 100)
    base = {"PATH": os.environ["PATH"]}
    assert subprocess.run(["true"], env={**base, "BIG": fits}).returncode == 0
    with pytest.raises(OSError) as refused:
        subprocess.run(["true"], env={**base, "BIG": fits + "x"})
    assert refused.value.errno == errno.E2BIG
    assert oversized({"BIG": fits + "x", "A": "1"}) == [("BIG", MAX_ARG_STRLEN + 1)]


@pytest.mark.parametrize(
    "where, origin",
    [
        ("user", "environment_variables.HUGE"),
        ("inherited", "the job's environment"),
    ],
)
def test_any_other_variable_too_long_is_refused_naming_it(tmp_path: Path, where: str, origin: str) -> None:
    huge = "x" * MAX_ARG_STRLEN
    job = msgspec.structs.replace(JOB, env={"HUGE": huge} if where == "user" else {})
    env = runtime.child_environment({"PATH": "/bin", **({"HUGE": huge} if where == "inherited" else {})}, job,
                                    RunDir(tmp_path), 0)  # fmt: skip
    with pytest.raises(TaskSetupError) as info:
        runtime.check_env_sizes(env, job)
    message = str(info.value)
    assert "environment variable HUGE is 131078 bytes" in message and origin in message, message
    assert "131072 bytes (MAX_ARG_STRLEN" in message


def test_the_records_say_how_tf_config_came_and_old_ones_still_read(tmp_path: Path) -> None:
    old_job = msgspec.json.encode({"run_id": "r", "experiment": "e", "backend": "slurm", "python": "p",
                                   "command": [], "schema": 4})  # fmt: skip
    assert msgspec.json.decode(old_job, type=JobRecord).tf_config_env_max == MAX_ARG_STRLEN
    old_task = msgspec.json.encode({"rank": 0, "role": "worker", "index": 0, "host": "n1", "schema": 1})
    assert msgspec.json.decode(old_task, type=TaskRecord).tf_config == ""
    assert (JOB.schema, TaskRecord(rank=0, role="worker", index=0, host="n1").schema) == (5, 2)


def test_the_child_site_names_the_variable_the_runtime_sets() -> None:
    """The sitecustomize imports nothing of hpc_tf: its copy of the variable's name must be the runtime's."""
    text = (runtime.CHILD_SITE / "sitecustomize.py").read_text()
    assert f'TF_CONFIG_FILE = "{TF_CONFIG_FILE}"' in text


def test_a_missing_file_stops_the_script_before_it_trains(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(runtime.CHILD_SITE), TF_CONFIG_FILE: str(tmp_path / "gone")}
    proc = subprocess.run([sys.executable, "-c", "print('trained')"], env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == "", proc
    assert f"hpc_tf: cannot read TF_CONFIG from {TF_CONFIG_FILE}={tmp_path / 'gone'}" in proc.stderr


def test_a_lone_surrogate_is_measured_not_raised() -> None:
    """YAML's "\\ud800" gives a lone surrogate; measuring it must not fail before the check that refuses it (fuzz)."""
    from hpc_tf.core.envsize import env_string_bytes

    assert env_string_bytes("X", "a\ud800b") == len("X=a") + 3 + len("b") + 1
