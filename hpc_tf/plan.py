"""Pure derivation of what a job runs: sbatch directives, the launch argv and the task's command.

Nothing here reads the environment or starts a process; the backends and the CLI pass in
what they looked up (interpreter path, chosen backend).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath

from .spec import EstimatorSpec, env_text, script_argv
from .targets import Target

# Paths inside the run directory that the job script refers to. The script runs with the run
# directory as its working directory (sbatch --chdir / the local supervisor's cwd), so the script
# text never contains the run directory itself: `render` shows exactly what `submit` submits.
SUBMITIT_FOLDER = ".submitit"
BATCH_LOG = "logs/slurm-%j.out"
LAUNCHER_LOG = "logs/launcher-%t.log"


@dataclass(frozen=True)
class ScriptPlan:
    """Everything a job script template needs, already derived and typed."""

    backend: str
    directives: list[tuple[str, str | None]] = field(default_factory=list)
    launch: list[str] = field(default_factory=list)
    ntasks: int = 1
    package_root: str = ""


def slurm_time(seconds: int) -> str:
    """Seconds → Slurm's D-HH:MM:SS (Slurm rounds up to whole minutes itself)."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"


def sbatch_directives(spec: EstimatorSpec, target: Target) -> list[tuple[str, str | None]]:
    """The #SBATCH options of a job, in a stable order: layout first, then the target's options."""
    opts = target.options
    out: list[tuple[str, str | None]] = [
        ("job-name", spec.experiment),
        ("output", BATCH_LOG),
        ("open-mode", "append"),
        ("nodes", str(spec.node_count)),
        ("ntasks-per-node", str(spec.process_count_per_node)),
    ]
    if spec.max_run_duration_seconds is not None:
        out.append(("time", slurm_time(spec.max_run_duration_seconds)))
    elif opts.time is not None:
        out.append(("time", str(opts.time)))
    for name in ("partition", "account", "qos", "cpus_per_task", "mem", "constraint", "exclude", "reservation"):
        value = getattr(opts, name)
        if value is not None:
            out.append((name.replace("_", "-"), str(value)))
    if spec.use_gpu:
        out.append(("gpus-per-node", str(opts.gpus_per_node or spec.process_count_per_node)))
    for name, value in opts.additional_parameters.items():
        if value is False:
            continue
        out.append((name.replace("_", "-"), None if value is None or value is True else str(value)))
    return out


def slurm_plan(spec: EstimatorSpec, target: Target, python: str, package_root: str) -> ScriptPlan:
    """The Slurm job: #SBATCH header, then `exec srun` of submitit's in-job entry on every task."""
    ntasks = spec.node_count * spec.process_count_per_node
    launch = [
        "srun",
        "--unbuffered",
        "--kill-on-bad-exit=1",
        f"--ntasks={ntasks}",
        f"--output={LAUNCHER_LOG}",
        python,
        "-u",
        "-m",
        "submitit.core._submit",
        SUBMITIT_FOLDER,
    ]
    return ScriptPlan("slurm", sbatch_directives(spec, target), launch, ntasks, package_root)


def local_plan(spec: EstimatorSpec, python: str, package_root: str) -> ScriptPlan:
    """The local job: the same in-job runtime, started directly as a process on this machine."""
    return ScriptPlan("local", [], [python, "-u", "-m", "hpc_tf.runtime", "."], 1, package_root)


def task_command(spec: EstimatorSpec, python: str) -> list[str]:
    """What each task runs, relative to the snapshot of source_directory."""
    return [python, "-u", str(PurePath(spec.entry_script)), *script_argv(spec.script_params)]


def task_environment(spec: EstimatorSpec) -> dict[str, str]:
    """The user's environment_variables as text, exactly as the task will see them."""
    return {name: env_text(value) for name, value in spec.environment_variables.items()}
