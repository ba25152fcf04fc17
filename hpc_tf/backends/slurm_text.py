"""What Slurm 22.05's clients print, as data: sacct, squeue, `scontrol show job -o`, and failed calls.

Why a module of its own: these text formats are hpc_tf's contract with Slurm, so every rule here is
checked against real output of real jobs, recorded in tests/data/slurm-22.05/ (its README says how).
Nothing here starts a process or reads the environment; the Slurm backend runs the commands.

Job ids are kept exactly as Slurm prints them: `123`, array tasks `123_4`, a pending array range
`123_[5-9%2]` (or `123_7` once one task is left), heterogeneous job components `123+0`, `123+1`.
Slurm answers a query by a task's or component's own job id with the printed id (`-j 14` gives
`9_0`, `-j 11` gives `10+1`), so ask with the id sbatch printed and match with `base_job_id`.
"""

from __future__ import annotations

import re
from typing import Iterable, Literal, Mapping

from ..core.answers import JobState
from ..core.records import TERMINAL_STATES

QueryFailure = Literal["disabled", "not_known", "no_answer"]

# A job as sacct/squeue print it (steps such as `123.batch` are not jobs; headers are not either).
_JOB_ID = re.compile(r"\d+(?:_(?:\d+|\[[0-9,%-]+\]))?(?:\+\d+)?")

# States after which a job never changes again: the one set the status transitions use too.
FINAL_STATES = TERMINAL_STATES
# Which component's end decides a heterogeneous job's end: the first of these found, else COMPLETED.
_WORST_FIRST = ("FAILED", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "TIMEOUT", "DEADLINE", "PREEMPTED", "CANCELLED")

SACCT_DISABLED = "Slurm accounting storage is disabled"  # sacct's whole stderr, exit status 1
_UNKNOWN_ID = "slurm_load_jobs error: Invalid job id specified"  # squeue or scontrol, one id asked
_NOT_FOUND = re.compile(r"Job \S+ not found")  # scontrol, on stdout, for an unknown array task (`9_99`)


def exit_code(text: str) -> int | None:
    """Slurm's `EXIT:SIGNAL` as one number: a job killed by signal N with exit 0 reports 128 + N, like a shell.

    Anything that is not `EXIT[:SIGNAL]` in digits (empty, `N/A`) is None: no exit code is known.
    """
    code, _, sig = text.strip().partition(":")
    if not code.isdigit() or (sig and not sig.isdigit()):
        return None
    if sig and int(sig) > 0 and int(code) == 0:
        return 128 + int(sig)
    return int(code)


def state_word(text: str) -> str:
    """The state alone: sacct says `CANCELLED by 0` (the uid who cancelled), the other clients `CANCELLED`."""
    words = text.split()
    return words[0].rstrip("+") if words else "UNKNOWN"


def base_job_id(text: str) -> str:
    """The job an id belongs to: `123_4`, `123_[5-9]`, `123+1` and the step `123.batch` all give `123`."""
    return re.split(r"[_+.]", text.strip(), maxsplit=1)[0]


def _job_lines(text: str, min_fields: int, max_fields: int) -> Iterable[list[str]]:
    """The `|`-separated lines of `text` that describe a job; the last field keeps any further `|`."""
    for line in text.splitlines():
        parts = line.split("|", max_fields - 1)
        if len(parts) >= min_fields and _JOB_ID.fullmatch(parts[0].strip()):
            yield [p.strip() for p in parts] + [""] * (max_fields - len(parts))


def parse_sacct(text: str) -> dict[str, JobState]:
    """`sacct -X -n -P -o JobID,State,ExitCode,Reason -j IDS`: one JobState per printed job id.

    Other lines (blank, a header, job steps) are ignored; a repeated id keeps its last line. sacct's
    Reason is its own (`None` for jobs squeue says wait for Resources); it is kept as printed.
    """
    out: dict[str, JobState] = {}
    for job_id, state, code, reason in _job_lines(text, 3, 4):
        out[job_id] = JobState(state_word(state), exit_code(code), reason)
    return out


def parse_squeue(text: str) -> dict[str, JobState]:
    """`squeue -h -t all -j IDS -o '%i|%T|%r'`: states without exit codes (squeue has none to give).

    The reason is kept as printed, spaces included (`ReqNodeNotAvail, UnavailableNodes:n4`).
    """
    return {job_id: JobState(state_word(state), None, reason) for job_id, state, reason in _job_lines(text, 2, 3)}


# Keys of `scontrol show job -o` in Slurm 22.05 (libslurmfull's job printer). Free-text values may hold
# spaces and `Word=`; they end only at one of these keys. Other values end at the next ` Word=`.
_KEYS_22_05 = """
    JobId ArrayJobId ArrayTaskId ArrayTaskThrottle HetJobId HetJobOffset HetJobIdSet JobName UserId GroupId
    MCS_label Priority Nice Account QOS WCKey JobState Reason FailedNode Dependency Requeue Restarts BatchFlag
    Reboot ExitCode DerivedExitCode RunTime TimeLimit TimeMin SubmitTime EligibleTime AccrueTime StartTime
    EndTime Deadline PreemptEligibleTime PreemptTime SuspendTime SecsPreSuspend LastSchedEval ResizeTime
    Scheduler Partition AllocNode:Sid ReqNodeList ExcNodeList NodeList SchedNodeList BatchHost FedOrigin
    FedViableSiblings FedActiveSiblings NumNodes NumCPUs NumTasks CPUs/Task ReqB:S:C:T TRES Socks/Node
    NtasksPerN:B:S:C CoreSpec ThreadSpec JOB_GRES Nodes CPU_IDs Mem GRES MinCPUsNode MinMemoryNode
    MinMemoryCPU MinTmpDiskNode Features ClusterFeatures Prefer BatchFeatures DelayBoot Reservation
    OverSubscribe Contiguous Licenses Network Command WorkDir AdminComment SystemComment Comment StdErr StdIn
    StdOut BurstBuffer BurstBufferState CpuFreqMin CpuFreqMax CpuFreqGov Power CpusPerTres MemPerTres TresBind
    TresFreq TresPerJob TresPerNode TresPerSocket TresPerStep TresPerTask NtasksPerTRES MailUser MailType
    ResvPorts Container CronJob CrontabSpec KillOInInvalidDependent Switches Wait-for-Switch SELinuxContext
    Extra
"""
SCONTROL_JOB_KEYS = frozenset(_KEYS_22_05.split())
SCONTROL_FREE_TEXT = frozenset(
    {
        "JobName",
        "Reason",
        "Command",
        "WorkDir",
        "Comment",
        "AdminComment",
        "SystemComment",
        "StdErr",
        "StdIn",
        "StdOut",
        "MailUser",
        "Container",
        "CrontabSpec",
        "Extra",
    }
)
_KEY = re.compile(r"(?:^| )([A-Za-z][A-Za-z0-9_:/-]*)=")


def parse_scontrol_jobs(text: str) -> list[dict[str, str]]:
    """Every record of `scontrol show job -o ID`: one line each (an array or a het job prints several)."""
    return [_scontrol_fields(line) for line in text.splitlines() if line.startswith("JobId=")]


def parse_scontrol_job(text: str) -> dict[str, str]:
    """The first record of `scontrol show job -o ID` as `Key=Value` pairs; {} when there is none.

    The rule: a ` Key=` starts a new pair when Key is a known 22.05 key, or when it looks like a key and
    the value being read is not free text (SCONTROL_FREE_TEXT). So `WorkDir=/a b`, `JobName=x y` and
    `Comment=a Key=Val x` come out whole; a free-text value that itself contains ` UserId=` (any known
    key) is cut there, which no parser of this format can avoid. Values are stripped of the separating
    blanks (a comment's own leading or trailing blanks are lost); a repeated key keeps its last value.
    """
    records = parse_scontrol_jobs(text)
    return records[0] if records else {}


def _scontrol_fields(line: str) -> dict[str, str]:
    out: dict[str, str] = {}
    key, start = "", 0
    for m in _KEY.finditer(line):
        name = m.group(1)
        if key and key in SCONTROL_FREE_TEXT and name not in SCONTROL_JOB_KEYS:
            continue  # `Word=` inside a comment, a path or a job name
        if key:
            out[key] = line[start : m.start()].strip()
        key, start = name, m.end()
    if key:
        out[key] = line[start:].strip()
    return out


def scontrol_job_state(fields: dict[str, str]) -> JobState:
    """The JobState of one parsed scontrol record (JobState, ExitCode, Reason).

    scontrol writes its reasons with `_` for spaces (`ReqNodeNotAvail,_UnavailableNodes:n4`) and, unlike
    sacct, keeps the signal of a job ended by Slurm (TIMEOUT, cancelled while running: `0:15`, so 143).
    """
    return JobState(
        state_word(fields.get("JobState", "")), exit_code(fields.get("ExitCode", "")), fields.get("Reason", "")
    )


def query_failure(returncode: int, stdout: str, stderr: str) -> QueryFailure:
    """What a failed or odd client call means: accounting off, ids unknown to a working scheduler, or no answer.

    "not_known" only for answers seen from a controller that works: squeue/scontrol asked one id it does
    not hold (exit 1, `slurm_load_jobs error: Invalid job id specified`), scontrol asked an unknown array
    task (exit 1, `Job 9_99 not found` on stdout), or an empty success (squeue with several unknown ids;
    sacct, which is also silent for a job submitted a moment ago). Everything else is "no_answer":
    `Unable to contact slurm controller`, `Socket timed out`, a database that refuses, a malformed id
    (scontrol then says `Invalid job id specified` too, but from `scontrol_print_job`), a killed client.
    """
    out, err = _lines(stdout), _lines(stderr)
    if SACCT_DISABLED in out or SACCT_DISABLED in err:
        return "disabled"
    if returncode == 0 and not out and not err:
        return "not_known"
    if returncode == 1 and not out and err == [_UNKNOWN_ID]:
        return "not_known"
    if returncode == 1 and not err and out and all(_NOT_FOUND.fullmatch(line) for line in out):
        return "not_known"
    return "no_answer"


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def het_offset(job_id: str) -> int | None:
    """The component number of a het job id (`123+1` gives 1); None for any other id."""
    _, plus, offset = job_id.strip().partition("+")
    return int(offset) if plus and offset.isdigit() else None


def combine_het_states(components: Iterable[JobState]) -> JobState:
    """One state for a heterogeneous job from its components' states, given in component order.

    The rule: while any component is not final the job is not final either: RUNNING (that component's
    JobState) if any component runs, else the first unfinished component's. Once all are final, the
    first component in the worst state decides, exit code and reason included: FAILED, then
    OUT_OF_MEMORY, NODE_FAIL, BOOT_FAIL, TIMEOUT, DEADLINE, PREEMPTED, CANCELLED; all COMPLETED gives
    the first component's. (Slurm 22.05 ends all components together with the same state: observed.)
    """
    states = list(components)
    if not states:
        raise ValueError("a heterogeneous job has at least one component")
    active = [s for s in states if s.state not in FINAL_STATES]
    if active:
        return next((s for s in active if s.state == "RUNNING"), active[0])
    for word in _WORST_FIRST:
        for s in states:
            if s.state == word:
                return s
    return states[0]


def combine_het_jobs(states: Mapping[str, JobState]) -> dict[str, JobState]:
    """`states` with each het job's components (`123+0`, `123+1`) replaced by one `123` (combine_het_states).

    Other ids are kept; a plain `123` next to its components (sacct's first record of a het job that
    just started) is replaced by the components' combination.
    """
    groups: dict[str, list[tuple[int, JobState]]] = {}
    out: dict[str, JobState] = {}
    for job_id, state in states.items():
        offset = het_offset(job_id)
        if offset is None:
            out[job_id] = state
        else:
            groups.setdefault(base_job_id(job_id), []).append((offset, state))
    for base, parts in groups.items():
        out[base] = combine_het_states(s for _, s in sorted(parts, key=lambda p: p[0]))
    return out


_ARRAY_RANGE = re.compile(r"^(\d+)_\[([0-9,:%-]+)\]$")


def expand_array_id(job_id: str) -> list[str]:
    """`123_[2-5%2]` (sacct's and squeue's pending remainder of an array) as `123_2` … `123_5`; `123_[1,3-4]`
    and steps `1-7:2` too. Any other id is returned as it is. The `%N` throttle is not a task."""
    m = _ARRAY_RANGE.match(job_id.strip())
    if not m:
        return [job_id.strip()]
    base, spec = m.group(1), m.group(2).split("%", 1)[0]
    out: list[str] = []
    for part in spec.split(","):
        span, _, step = part.partition(":")
        first, _, last = span.partition("-")
        if not first.isdigit() or (last and not last.isdigit()) or (step and not step.isdigit()):
            return [job_id.strip()]
        stop = int(last) if last else int(first)
        out += [f"{base}_{i}" for i in range(int(first), stop + 1, int(step) if step else 1)]
    return out


def expand_array_states(states: Mapping[str, JobState]) -> dict[str, JobState]:
    """Parsed sacct/squeue answers with every pending range split into its tasks (each with the range's state).

    A task's own line wins over a range that still lists it (sacct printed `9_2|RUNNING` and `9_[2-3%2]|PENDING`
    together, recorded in tests/data/slurm-22.05/sacct-array-by-base-id)."""
    out = {job_id: state for job_id, state in states.items() if "[" not in job_id}
    for job_id, state in states.items():
        for task in expand_array_id(job_id) if "[" in job_id else ():
            out.setdefault(task, state)
    return out


def config_values(config_text: str) -> dict[str, str]:
    """`scontrol show config`'s `Key = value` lines as a mapping (the first of a repeated key)."""
    out: dict[str, str] = {}
    for line in config_text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out.setdefault(key.strip(), value.strip())
    return out


def array_limits(config_text: str) -> tuple[int | None, int | None]:
    """(MaxArraySize, max_array_tasks) from `scontrol show config`: the highest array index is MaxArraySize − 1;
    `SchedulerParameters=max_array_tasks=N` caps how many tasks one array may have. None when not printed."""
    values = config_values(config_text)
    size = values.get("MaxArraySize", "")
    tasks = None
    for item in values.get("SchedulerParameters", "").split(","):
        name, _, number = item.partition("=")
        if name.strip() == "max_array_tasks" and number.strip().isdigit():
            tasks = int(number)
    return (int(size) if size.isdigit() else None), tasks
