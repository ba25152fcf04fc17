#!/usr/bin/env bash
# dev-cluster.sh VERB — a real Slurm cluster (Debian's Slurm 22.05) on this one machine.
#
# `up` installs what is missing (slurmctld slurmd slurm-client munge, Open MPI with PMIx), then
# starts munged, slurmctld and one slurmd per fake node (n1..nN, default 4), each in its own UTS
# namespace so `hostname` in a task prints its node name. Nodes have fake GPUs: gres on character
# devices made with mknod. Everything lives under $HPC_TF_CLUSTER_DIR; the only things written
# outside it are a link /etc/slurm/slurm.conf (the default instance's, when no real one exists) and the node names in
# /etc/hosts, so a client that lost SLURM_CONF never falls back to DNS look-ups.
# Clients use:  eval "$(scripts/dev-cluster.sh env)"   (exports SLURM_CONF and Open MPI's root vars)
#
# Verbs, each idempotent; only `up` (fresh) and `down` touch munged, the config, state/ or spool/:
#   install | env | status   packages only | client variables | sinfo, or which daemons are alive
#   up    all alive: nothing. Fully down (munged or every Slurm daemon dead): a fresh cluster (state/,
#         spool/, jobcomp.log wiped; job ids from 1). Otherwise starts only the dead daemons, keeping
#         state/ (slurmctld without -c): running jobs go on and stay known.
#   down  cancels jobs, stops every daemon and leftover job process
#   stop-controller | kill-controller   SIGTERM (KILL after 10 s) | SIGKILL slurmctld alone; slurmds and
#         job processes go on, clients fail after ~9 s. slurmctld saves state/ at most every 5 s, so a
#         kill loses the last ~5 s: a job started just before comes back PENDING and its node drained.
#   start-controller | restart-controller   start slurmctld on state/, wait for `scontrol ping` and
#         the nodes' registration (~4 s) | stop-controller, then start-controller
#   node-down NODE [REASON] | node-up NODE   scontrol state=down: its jobs' steps are killed, the jobs
#         requeued; it stays DOWN (ReturnToService=1) | state=resume, waits for idle/allocated/mixed
#   kill-slurmd NODE | start-slurmd NODE   SIGKILL the node's real slurmd (not its reaper): job processes
#         there live on; after SlurmdTimeout (20 s) + up to ~10 s the node is DOWN "Not responding" and
#         its jobs are requeued | start it as `up` does, wait until it registered ("Not responding" ends)
#
# Knobs: HPC_TF_CLUSTER_DIR (/var/tmp/hpc_tf-cluster), HPC_TF_CLUSTER_NODES (4),
# HPC_TF_CLUSTER_CPUS (2 per node), HPC_TF_CLUSTER_GPUS (2 per node), HPC_TF_CLUSTER_PORT (16817),
# HPC_TF_CLUSTER_ACCOUNTING (0; 1 = real accounting: MariaDB on 127.0.0.1 + slurmdbd, so `sacct`
# answers from a database; +~35 s of packages once, +2-3 s per start), HPC_TF_CLUSTER_MAX_ARRAY_SIZE (1001,
# Slurm's default MaxArraySize), HPC_TF_CLUSTER_MAX_JOB_COUNT (10000, Slurm's default MaxJobCount),
# HPC_TF_CLUSTER_SCHEDULER (sched/backfill; sched/builtin never starts a heterogeneous job),
# HPC_TF_CLUSTER_HETJOB_STEPS (1; 0 adds SchedulerParameters=disable_hetjob_steps: no step spans components).
# Must run as root (daemons run as root, SlurmUser=root). No systemd or cgroups needed.
set -euo pipefail

DEFAULT_DIR=/var/tmp/hpc_tf-cluster
DIR=${HPC_TF_CLUSTER_DIR:-$DEFAULT_DIR}
NODES=${HPC_TF_CLUSTER_NODES:-4}
CPUS=${HPC_TF_CLUSTER_CPUS:-2}
GPUS=${HPC_TF_CLUSTER_GPUS:-2}
PORT=${HPC_TF_CLUSTER_PORT:-16817}
TIMEOUT=${HPC_TF_CLUSTER_TIMEOUT:-60}
ACCOUNTING=${HPC_TF_CLUSTER_ACCOUNTING:-0}
MAX_ARRAY_SIZE=${HPC_TF_CLUSTER_MAX_ARRAY_SIZE:-1001}
MAX_JOB_COUNT=${HPC_TF_CLUSTER_MAX_JOB_COUNT:-10000}
SCHEDULER=${HPC_TF_CLUSTER_SCHEDULER:-sched/backfill}
HETJOB_STEPS=${HPC_TF_CLUSTER_HETJOB_STEPS:-1}
DB_PORT=$((PORT + 90)); DBD_PORT=$((PORT + 91))
export SLURM_CONF=$DIR/etc/slurm.conf

log() { printf '[dev-cluster %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }
pid_in() { [ -s "$1" ] && cat "$1" || true; }
node_names() { seq -f 'n%g' 1 "$NODES" | tr '\n' ' '; }
# issue 12's cpu/gpu partitions: the first half of the nodes, the second half (none on a 1-node cluster)
hetjob_partitions() {
  [ "$NODES" -ge 2 ] || return 0
  local half=$(( NODES / 2 ))
  echo "PartitionName=cpu Nodes=n[1-$half] MaxTime=INFINITE State=UP"
  echo "PartitionName=gpu Nodes=n[$((half + 1))-$NODES] MaxTime=INFINITE State=UP"
}
nodelist() { if [ "$NODES" = 1 ]; then echo n1; else echo "n[1-$NODES]"; fi; }
# pid $1 is a live $2 of this instance: an argument names a path under $DIR/ (slurmdbd, which has none: its
# SLURM_CONF). A pid file left by a killed daemon names a pid the kernel gives again (pid_max is often 32768),
# maybe to another instance's daemon: `down` must never stop that one.
proc_is() {
  [ "$(cat "/proc/${1:-x}/comm" 2>/dev/null)" = "$2" ] && alive "$1" || return 1
  tr '\0' '\n' 2>/dev/null < "/proc/$1/cmdline" \
    | awk -v d="$DIR/" '{ sub(/^--[a-z-]+=/, ""); if (index($0, d) == 1) { f = 1; exit } } END { exit !f }' && return 0
  tr '\0' '\n' 2>/dev/null < "/proc/$1/environ" | grep -qxF "SLURM_CONF=$SLURM_CONF"
}
ctld_pid() { local p; p=$(pid_in "$DIR/run/slurmctld.pid"); if proc_is "$p" slurmctld; then echo "$p"; fi; }
slurmd_pid() { local p; p=$(pid_in "$DIR/run/slurmd-$1.pid"); if proc_is "$p" slurmd; then echo "$p"; fi; }
slurmd_alive() { [ -n "$(slurmd_pid "$1")" ]; }
dead() { ! alive "$1"; }
ping_ok() { scontrol ping >/dev/null 2>&1; }  # fails at once when slurmctld is down (other clients take ~9 s)
node_state() { sinfo -h -N -n "$1" -o %T 2>/dev/null | head -1; }
node_ready() { [[ "$(node_state "$1")" =~ ^(idle|allocated|mixed)$ ]]; }
node_registered() { local s; s=$(node_state "$1"); [[ -n "$s" && "$s" != unk* && "$s" != *[*~] ]]; }  # * = not responding
nodes_registered() { local n; for n in $(cat "$DIR/run/nodes"); do slurmd_alive "$n" && ! node_registered "$n" && return 1; done; return 0; }
# sinfo -N prints a node once per partition (debug, high, cpu|gpu): count each node once, or 2 idle nodes pass for 4
all_idle() { [ "$(sinfo -h -N -o '%N %T' 2>/dev/null | awk '$2 == "idle" && !seen[$1]++' | wc -l)" -ge "$NODES" ]; }
wait_for() {  # wait_for SECS WHAT CMD...: poll CMD every 0.2 s, die after SECS
  local secs=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || { ! ping_ok || sinfo -N >&2; die "no $what after ${secs}s: see $DIR/log/"; }
    sleep 0.2
  done
}

install_packages() {
  local pkgs=()
  command -v slurmctld >/dev/null || pkgs+=(slurmctld)
  command -v slurmd >/dev/null || pkgs+=(slurmd)
  command -v sbatch >/dev/null || pkgs+=(slurm-client)
  command -v munged >/dev/null || pkgs+=(munge)
  command -v mpirun >/dev/null || pkgs+=(openmpi-bin)
  dpkg -s libopenmpi-dev >/dev/null 2>&1 || pkgs+=(libopenmpi-dev)   # brings libpmix for srun --mpi=pmix
  command -v unshare >/dev/null || pkgs+=(util-linux)
  if [ "$ACCOUNTING" = 1 ]; then
    command -v slurmdbd >/dev/null || pkgs+=(slurmdbd)
    command -v mariadbd >/dev/null || pkgs+=(mariadb-server)
  fi
  [ ${#pkgs[@]} -eq 0 ] && return 0
  log "installing ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-cache show slurmd >/dev/null 2>&1 || apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null; }
}

acct_ok() { if [ "$ACCOUNTING" = 1 ]; then proc_is "$(pid_in "$DIR/run/slurmdbd.pid")" slurmdbd; else ! proc_is "$(pid_in "$DIR/run/slurmdbd.pid")" slurmdbd; fi; }

is_up() {
  [ -f "$SLURM_CONF" ] || return 1
  proc_is "$(pid_in "$DIR/munge/munged.pid")" munged || return 1
  [ -n "$(ctld_pid)" ] || return 1
  acct_ok || return 1
  local n; for n in $(cat "$DIR/run/nodes" 2>/dev/null || echo none); do
    slurmd_alive "$n" || return 1
  done
  ping_ok
}

repairable() {  # munged, this config and some Slurm daemon alive: a daemon died, the cluster was not stopped
  [ -f "$SLURM_CONF" ] && [ "$(cat "$DIR/run/nodes" 2>/dev/null)" = "$(node_names)" ] || return 1
  proc_is "$(pid_in "$DIR/munge/munged.pid")" munged && acct_ok || return 1
  [ -n "$(ctld_pid)" ] && return 0
  local n; for n in $(node_names); do slurmd_alive "$n" && return 0; done
  return 1
}

daemons() {  # which of this cluster's daemons are alive
  local n; echo -n "munged:$(proc_is "$(pid_in "$DIR/munge/munged.pid")" munged && echo up || echo down)"
  echo -n " slurmctld:$([ -n "$(ctld_pid)" ] && echo up || echo down)"
  for n in $(cat "$DIR/run/nodes" 2>/dev/null); do echo -n " slurmd-$n:$(slurmd_alive "$n" && echo up || echo down)"; done
}

write_config() {
  local ctl; ctl=$(hostname -s)
  local first=$((PORT + 1)) last=$((PORT + NODES)) ports
  if [ "$NODES" = 1 ]; then ports=$first; else ports="[$first-$last]"; fi
  local gres_node="" gres_types=""
  : > "$DIR/etc/gres.conf"
  if [ "$GPUS" -gt 0 ]; then
    local i; for i in $(seq 0 $((GPUS - 1))); do
      # a GPU "device" must be a character device for slurmd: copies of /dev/null
      [ -c "$DIR/dev/gpu$i" ] || { rm -f "$DIR/dev/gpu$i"; mknod -m 666 "$DIR/dev/gpu$i" c 1 3; }
    done
    gres_node=" Gres=gpu:$GPUS"; gres_types="GresTypes=gpu"
    printf 'AutoDetect=off\nNodeName=%s Name=gpu File=%s/dev/gpu[0-%d]\n' "$(nodelist)" "$DIR" $((GPUS - 1)) > "$DIR/etc/gres.conf"
  fi
  local acct
  if [ "$ACCOUNTING" = 1 ]; then
    acct="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
# slurmdbd connections take the munge socket from AccountingStoragePass, not AuthInfo
AccountingStoragePass=$DIR/munge/munge.sock
JobAcctGatherType=jobacct_gather/linux"
  else
    acct="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
  fi
  cat > "$SLURM_CONF" <<EOF
# Written by hpc_tf's scripts/dev-cluster.sh: $NODES fake nodes on one machine.
ClusterName=hpctfdev
SlurmctldHost=$ctl(127.0.0.1)
SlurmctldPort=$PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.sock,cred_expire=10
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
# per-node TmpFS: PMIx puts its directories there and fake nodes would collide in /tmp
TmpFS=$DIR/tmp/%n
MailProg=/bin/true
ProctrackType=proctrack/pgid
TaskPlugin=task/none
$acct
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.log
MinJobAge=3600
# Slurm's default; HPC_TF_CLUSTER_MAX_ARRAY_SIZE makes a cluster whose arrays must be split (index < MaxArraySize)
MaxArraySize=$MAX_ARRAY_SIZE
# Slurm's default; every array task counts, and ended ones stay for MinJobAge (an hour): a benchmark that
# submits many 1,000-task arrays runs on its own instance with more (HPC_TF_CLUSTER_MAX_JOB_COUNT)
MaxJobCount=$MAX_JOB_COUNT
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
MpiDefault=none
# 1: a node set DOWN by hand stays down; one DOWN for "Not responding" returns when its slurmd registers
ReturnToService=1
# a dead slurmd (kill-slurmd) makes its node DOWN and its jobs requeue after 20-30 s, not 300-400 s
SlurmdTimeout=20
SchedulerType=$SCHEDULER
SchedulerParameters=batch_sched_delay=0,bf_interval=1,sched_interval=2$([ "$HETJOB_STEPS" = 0 ] && echo ,disable_hetjob_steps)
KillWait=5
InactiveLimit=0
JobRequeue=1
$gres_types
NodeName=$(nodelist) NodeHostname=$(nodelist) NodeAddr=127.0.0.1 Port=$ports CPUs=$CPUS RealMemory=4000$gres_node State=UNKNOWN
# preemption (issue 11): a job in 'high' requeues the 'debug' jobs it needs the nodes of (they must allow
# requeue); the --signal warning is sent at preemption, and they have GraceTime to save before they are killed
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
SlurmctldParameters=preempt_send_user_signal
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP PriorityTier=1 GraceTime=60
PartitionName=high Nodes=ALL MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
# per-role placement (issue 12): CPU nodes and GPU nodes (the fake GPUs) for heterogeneous jobs
$(hetjob_partitions)
EOF
}

write_reaper() {
  # slurmd runs under a child subreaper: PID 1 here reaps orphans late, and a zombie left in a
  # job's process group makes proctrack/pgid end every srun job seconds late.
  cat > "$DIR/bin/reaper.py" <<'EOF'
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
child = os.fork()
if child == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
def forward(sig, _frame):
    try:
        os.kill(child, sig)
    except ProcessLookupError:
        pass
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, forward)
rc = 0
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        break
    if pid == child:
        rc = os.waitstatus_to_exitcode(status)
sys.exit(rc if rc >= 0 else 128 - rc)
EOF
}

start_accounting() {
  # MariaDB on its own datadir, TCP on 127.0.0.1 only; a fresh accounting database every start
  mkdir -p "$DIR/mysql"
  if [ ! -d "$DIR/mysql/data/mysql" ]; then
    mariadb-install-db --no-defaults --datadir="$DIR/mysql/data" --user=root --auth-root-authentication-method=normal \
      --skip-test-db > "$DIR/log/mariadb-install.log" 2>&1 || die "mariadb-install-db failed: $DIR/log/mariadb-install.log"
  fi
  mariadbd --no-defaults --datadir="$DIR/mysql/data" --user=root --bind-address=127.0.0.1 --port="$DB_PORT" \
    --socket="$DIR/mysql/mysqld.sock" --pid-file="$DIR/mysql/mysqld.pid" --log-error="$DIR/log/mariadb.log" \
    --skip-name-resolve --innodb-buffer-pool-size=256M >/dev/null 2>&1 </dev/null &
  local i
  for i in $(seq 1 100); do sql 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
  sql 'select 1' >/dev/null 2>&1 || die "mariadb did not start: $DIR/log/mariadb.log"
  sql "DROP DATABASE IF EXISTS slurm_acct_db"
  sql "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'hpctfdev'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
  printf '%s\n' "AuthType=auth/munge" "AuthInfo=socket=$DIR/munge/munge.sock" "DbdHost=$(hostname -s)" \
    "DbdAddr=127.0.0.1" "DbdPort=$DBD_PORT" "SlurmUser=root" "LogFile=$DIR/log/slurmdbd.log" \
    "PidFile=$DIR/run/slurmdbd.pid" "StorageType=accounting_storage/mysql" "StorageHost=127.0.0.1" \
    "StoragePort=$DB_PORT" "StorageUser=slurm" "StoragePass=hpctfdev" "StorageLoc=slurm_acct_db" > "$DIR/etc/slurmdbd.conf"
  chmod 600 "$DIR/etc/slurmdbd.conf"
  slurmdbd
  for i in $(seq 1 100); do timeout 5 sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.1; done
  timeout 10 sacctmgr -i add cluster hpctfdev >/dev/null 2>&1 || true
}

sql() { mariadb --no-defaults -S "$DIR/mysql/mysqld.sock" -uroot -e "$1"; }

hosts_line() {  # this instance's /etc/hosts line set to $1 ("" removes it); instances (test workers) take turns,
  # and the file is rewritten in place (it is often a bind mount) with one write, never left empty for a reader
  (
    flock 9
    local h; h=$(grep -v "# hpc_tf-dev-cluster:$DIR\$" /etc/hosts || true)
    if [ -n "$1" ]; then h=$(printf '%s\n%s' "$h" "$1"); fi
    printf '%s\n' "$h" | dd of=/etc/hosts conv=notrunc status=none
    truncate -s "$(printf '%s\n' "$h" | wc -c)" /etc/hosts
  ) 9>/var/tmp/hpc_tf-dev-cluster.hosts.lock
}

name_guards() {
  mkdir -p /etc/slurm
  # the default instance only: a client that lost SLURM_CONF must never reach another instance (a test worker's)
  if [ "$DIR" = "$DEFAULT_DIR" ] && { [ ! -e /etc/slurm/slurm.conf ] || [[ "$(readlink /etc/slurm/slurm.conf)" == "$DIR/"* ]]; }; then
    ln -sfn "$SLURM_CONF" /etc/slurm/slurm.conf
  fi
  if [ -w /etc/hosts ]; then
    hosts_line "127.0.0.1 $(node_names) # hpc_tf-dev-cluster:$DIR"
  fi
}

up() {
  [ "$(id -u)" = 0 ] || die "must run as root"
  install_packages
  if is_up; then log "already up"; sinfo >&2; return 0; fi
  if repairable; then
    log "repairing ($(daemons)): state/ kept"
    name_guards; start_controller
    local m; for m in $(node_names); do slurmd_alive "$m" || start_slurmd "$m"; done
    for m in $(node_names); do wait_for 10 "slurmd $m" slurmd_alive "$m"; slurmd_started "$m"; done
    wait_for "$TIMEOUT" "registration of every node" nodes_registered
    log "up (repaired, state kept): $(squeue -h | wc -l) jobs queued"; return 0
  fi
  down >/dev/null 2>&1 || true
  mkdir -p "$DIR"/{etc,log,run,state,spool,tmp,dev,bin,munge}
  chmod 755 "$DIR"; chmod 711 "$DIR/munge"
  # job ids restart at 1: no old records, and no old per-node TmpFS (PMIx's spmix_appdir_<uid>_<job>.<step>
  # of an earlier "job 1" would make the new job 1's first step fail: "Cannot create directory ... File exists")
  rm -rf "${DIR:?}"/state/* "${DIR:?}"/spool/* "${DIR:?}"/tmp/* "$DIR/log/jobcomp.log"
  local n
  for n in $(node_names); do mkdir -p "$DIR/spool/$n" "$DIR/tmp/$n"; done
  echo "$(node_names)" > "$DIR/run/nodes"
  [ -s "$DIR/munge/munge.key" ] || dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
  chmod 600 "$DIR/munge/munge.key"
  munged --socket="$DIR/munge/munge.sock" --key-file="$DIR/munge/munge.key" --pid-file="$DIR/munge/munged.pid" \
         --seed-file="$DIR/munge/munged.seed" --log-file="$DIR/log/munged.log"
  write_config
  write_reaper
  name_guards
  if [ "$ACCOUNTING" = 1 ]; then start_accounting; fi
  slurmctld -f "$SLURM_CONF"
  wait_for 10 "answer from slurmctld" ping_ok
  for n in $(node_names); do start_slurmd "$n"; done
  wait_for "$TIMEOUT" "$NODES idle nodes" all_idle
  for n in $(node_names); do wait_for 10 "slurmd $n" slurmd_alive "$n"; slurmd_started "$n"; done
  log "up: $NODES nodes ($(nodelist)), $GPUS fake GPUs each, accounting $([ "$ACCOUNTING" = 1 ] && echo on || echo off); SLURM_CONF=$SLURM_CONF"
}

stop_pids() {  # TERM, wait up to $2 s, then KILL
  local pids="$1" secs="$2" t p left
  [ -n "${pids// /}" ] || return 0
  kill -TERM $pids 2>/dev/null || true
  for t in $(seq 1 $((secs * 10))); do
    left=""; for p in $pids; do alive "$p" && left="$left $p"; done
    [ -z "$left" ] && return 0; sleep 0.1
  done
  kill -KILL $left 2>/dev/null || true
}

down() {
  local ctld; ctld=$(ctld_pid)
  if [ -n "$ctld" ] && ping_ok; then
    local jobs; jobs=$(squeue -h -o %A 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
      scancel $jobs 2>/dev/null || true
      local t; for t in $(seq 1 100); do [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break; sleep 0.1; done
    fi
  fi
  local pids="" f p
  for f in "$DIR"/run/slurmd-*.pid; do [ -f "$f" ] && { p=$(cat "$f"); proc_is "$p" slurmd && pids="$pids $p"; }; done
  pids="$pids $ctld"
  stop_pids "$pids" 10
  # leftover job processes: the nodes' reapers and everything under them (slurmstepd and the job's processes
  # are reparented to the reaper, which outlives a killed slurmd). Not by UTS namespace: the kernel gives a
  # freed namespace's number to the next one made, maybe another instance's node.
  local left; left=$(instance_procs)
  stop_pids "$left" 5
  p=$(pid_in "$DIR/run/slurmdbd.pid"); proc_is "$p" slurmdbd && stop_pids "$p" 10
  p=$(pid_in "$DIR/mysql/mysqld.pid"); proc_is "$p" mariadbd && stop_pids "$p" 20
  p=$(pid_in "$DIR/munge/munged.pid"); proc_is "$p" munged && stop_pids "$p" 5
  rm -f "$DIR"/run/*.pid "$DIR/munge/munged.pid" "$DIR/mysql/mysqld.pid"
  [[ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" == "$DIR/"* ]] && rm -f /etc/slurm/slurm.conf
  if [ -w /etc/hosts ] && grep -q "# hpc_tf-dev-cluster:$DIR\$" /etc/hosts; then hosts_line ""; fi
  log "down"
}

start_slurmd() {  # in its own UTS namespace (hostname = node name), under the reaper; pid file = real slurmd
  local n=$1 py; py=$(command -v python3)
  rm -f "$DIR/run/slurmd-$n.pid"
  setsid unshare --uts -- sh -c "hostname $n && exec $py $DIR/bin/reaper.py slurmd -D -f $SLURM_CONF -N $n" \
    </dev/null >>"$DIR/log/slurmd-$n.stdio" 2>&1 &
}
instance_procs() {  # the pids of this instance's reapers and of all their descendants
  python3 - "$DIR/bin/reaper.py" <<'EOF'
import os, sys
mark, children, roots = sys.argv[1].encode(), {}, []
for name in filter(str.isdigit, os.listdir("/proc")):
    try:
        ppid = int(open(f"/proc/{name}/stat", "rb").read().rsplit(b")", 1)[1].split()[1])
        argv = open(f"/proc/{name}/cmdline", "rb").read().split(b"\0")
    except (OSError, IndexError, ValueError):
        continue
    children.setdefault(ppid, []).append(int(name))
    if mark in argv:
        roots.append(int(name))
found, todo = set(), list(roots)
while todo:
    pid = todo.pop()
    if pid not in found and pid != os.getpid():
        found.add(pid)
        todo += children.get(pid, [])
print(" ".join(map(str, sorted(found))))
EOF
}
slurmd_started() { slurmd_alive "$1" || die "slurmd $1 ended while starting: see $DIR/log/slurmd-$1.log"; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }
need_cluster() { need_root; [ -f "$SLURM_CONF" ] && proc_is "$(pid_in "$DIR/munge/munged.pid")" munged || die "dev cluster is not up ($DIR): run up"; }
need_node() { local all; all=$(cat "$DIR/run/nodes" 2>/dev/null || true); [[ -n "$1" && " $all " == *" $1 "* ]] || die "no node '$1' (nodes: $all)"; }

stop_controller() {  # $1 = TERM (then KILL after 10 s) or KILL; slurmctld only
  local p; p=$(ctld_pid)
  [ -n "$p" ] || { log "slurmctld is not running"; return 0; }
  if [ "$1" = KILL ]; then kill -KILL "$p" 2>/dev/null || true; else stop_pids "$p" 10; fi
  wait_for 10 "end of slurmctld $p" dead "$p"
  log "slurmctld stopped ($1, pid $p); slurmds, munged, state/ and running jobs kept"
}
start_controller() {  # no -c: slurmctld recovers jobs and DOWN/DRAIN node states from state/
  local was; was=$(ctld_pid)
  [ -n "$was" ] || slurmctld -f "$SLURM_CONF"
  wait_for 30 "answer from slurmctld" ping_ok
  wait_for "$TIMEOUT" "registration of the nodes" nodes_registered
  log "slurmctld $([ -n "$was" ] && echo "already running" || echo started) (pid $(ctld_pid)): $(squeue -h | wc -l) jobs queued"
}

node_down() {
  ping_ok || die "slurmctld does not answer"
  scontrol update nodename="$1" state=down reason="${2:-dev-cluster node-down}"
  log "$1: $(scontrol -o show node "$1" | sed -E 's/.* State=([^ ]+).*/\1/') (${2:-dev-cluster node-down})"
}
node_up() {
  ping_ok || die "slurmctld does not answer"
  node_ready "$1" || scontrol update nodename="$1" state=resume || true
  wait_for "$TIMEOUT" "$1 idle/allocated/mixed" node_ready "$1"
  log "$1: $(node_state "$1")"
}

kill_slurmd() {
  local p; p=$(slurmd_pid "$1")
  [ -n "$p" ] || { log "slurmd $1 is not running"; return 0; }
  kill -KILL "$p"; wait_for 10 "end of slurmd $1 ($p)" dead "$p"
  log "slurmd $1 killed (pid $p); its jobs' processes live on, Slurm notices after SlurmdTimeout"
}
start_one_slurmd() {
  local was; was=$(slurmd_pid "$1")
  [ -n "$was" ] || start_slurmd "$1"
  wait_for 10 "slurmd $1" slurmd_alive "$1"; slurmd_started "$1"
  if ping_ok; then wait_for "$TIMEOUT" "registration of $1" node_registered "$1"; fi
  log "slurmd $1 $([ -n "$was" ] && echo "already running" || echo started) (pid $(slurmd_pid "$1")): $(node_state "$1")"
}

case "${1:-}" in
  install) [ "$(id -u)" = 0 ] || die "must run as root"; install_packages ;;
  up) up ;;
  down) down ;;
  status) if is_up; then sinfo; else echo "dev cluster is not up ($DIR): $(daemons)"; exit 1; fi ;;
  stop-controller) need_root; stop_controller TERM ;;
  kill-controller) need_root; stop_controller KILL ;;
  start-controller) need_cluster; start_controller ;;
  restart-controller) need_cluster; stop_controller TERM; start_controller ;;
  node-down) need_cluster; need_node "${2:-}"; node_down "$2" "${3:-}" ;;
  node-up) need_cluster; need_node "${2:-}"; node_up "$2" ;;
  kill-slurmd) need_root; need_node "${2:-}"; kill_slurmd "$2" ;;
  start-slurmd) need_cluster; need_node "${2:-}"; start_one_slurmd "$2" ;;
  env) cat <<EOF
export SLURM_CONF=$SLURM_CONF
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
EOF
  ;;
  *) echo "usage: $0 install|up|down|status|env|stop-controller|start-controller|restart-controller|kill-controller" >&2
     echo "       $0 node-down NODE [REASON]|node-up NODE|kill-slurmd NODE|start-slurmd NODE" >&2; exit 2 ;;
esac
