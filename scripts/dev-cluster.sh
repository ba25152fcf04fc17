#!/usr/bin/env bash
# dev-cluster.sh install|up|down|status|env — a real Slurm cluster (Debian's Slurm 22.05) on this one machine.
#
# `up` installs what is missing (slurmctld slurmd slurm-client munge, Open MPI with PMIx), then
# starts munged, slurmctld and one slurmd per fake node (n1..nN, default 4), each in its own UTS
# namespace so `hostname` in a task prints its node name. Nodes have fake GPUs: gres on character
# devices made with mknod. Everything lives under $HPC_TF_CLUSTER_DIR; the only things written
# outside it are a link /etc/slurm/slurm.conf (when no real one exists) and the node names in
# /etc/hosts, so a client that lost SLURM_CONF never falls back to DNS look-ups.
# Clients use:  eval "$(scripts/dev-cluster.sh env)"   (exports SLURM_CONF and Open MPI's root vars)
#
# Knobs: HPC_TF_CLUSTER_DIR (/var/tmp/hpc_tf-cluster), HPC_TF_CLUSTER_NODES (4),
# HPC_TF_CLUSTER_CPUS (2 per node), HPC_TF_CLUSTER_GPUS (2 per node), HPC_TF_CLUSTER_PORT (16817),
# HPC_TF_CLUSTER_ACCOUNTING (0; 1 = real accounting: MariaDB on 127.0.0.1 + slurmdbd, so `sacct`
# answers from a database; +~35 s of packages once, +2-3 s per start).
# Must run as root (daemons run as root, SlurmUser=root). No systemd or cgroups needed.
set -euo pipefail

DIR=${HPC_TF_CLUSTER_DIR:-/var/tmp/hpc_tf-cluster}
NODES=${HPC_TF_CLUSTER_NODES:-4}
CPUS=${HPC_TF_CLUSTER_CPUS:-2}
GPUS=${HPC_TF_CLUSTER_GPUS:-2}
PORT=${HPC_TF_CLUSTER_PORT:-16817}
TIMEOUT=${HPC_TF_CLUSTER_TIMEOUT:-60}
ACCOUNTING=${HPC_TF_CLUSTER_ACCOUNTING:-0}
DB_PORT=$((PORT + 90)); DBD_PORT=$((PORT + 91))
export SLURM_CONF=$DIR/etc/slurm.conf

log() { printf '[dev-cluster %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }
pid_in() { [ -s "$1" ] && cat "$1" || true; }
node_names() { seq -f 'n%g' 1 "$NODES" | tr '\n' ' '; }
nodelist() { if [ "$NODES" = 1 ]; then echo n1; else echo "n[1-$NODES]"; fi; }

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

is_up() {
  [ -f "$SLURM_CONF" ] || return 1
  alive "$(pid_in "$DIR/munge/munged.pid")" || return 1
  alive "$(pid_in "$DIR/run/slurmctld.pid")" || return 1
  if [ "$ACCOUNTING" = 1 ]; then alive "$(pid_in "$DIR/run/slurmdbd.pid")" || return 1; fi
  if [ "$ACCOUNTING" != 1 ] && alive "$(pid_in "$DIR/run/slurmdbd.pid")"; then return 1; fi
  local n; for n in $(cat "$DIR/run/nodes" 2>/dev/null || echo none); do
    alive "$(pid_in "$DIR/run/slurmd-$n.pid")" || return 1
  done
  scontrol ping >/dev/null 2>&1
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
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,bf_interval=1,sched_interval=2
KillWait=5
InactiveLimit=0
JobRequeue=1
$gres_types
NodeName=$(nodelist) NodeHostname=$(nodelist) NodeAddr=127.0.0.1 Port=$ports CPUs=$CPUS RealMemory=4000$gres_node State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
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

name_guards() {
  mkdir -p /etc/slurm
  if [ ! -e /etc/slurm/slurm.conf ] || [[ "$(readlink /etc/slurm/slurm.conf)" == "$DIR/"* ]]; then
    ln -sfn "$SLURM_CONF" /etc/slurm/slurm.conf
  fi
  if [ -w /etc/hosts ]; then
    local h; h=$(grep -v "# hpc_tf-dev-cluster:$DIR\$" /etc/hosts || true)
    printf '%s\n127.0.0.1 %s # hpc_tf-dev-cluster:%s\n' "$h" "$(node_names)" "$DIR" > /etc/hosts
  fi
}

up() {
  [ "$(id -u)" = 0 ] || die "must run as root"
  install_packages
  if is_up; then log "already up"; sinfo >&2; return 0; fi
  down >/dev/null 2>&1 || true
  mkdir -p "$DIR"/{etc,log,run,state,spool,tmp,dev,bin,munge}
  chmod 755 "$DIR"; chmod 711 "$DIR/munge"
  rm -rf "${DIR:?}"/state/* "${DIR:?}"/spool/*
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
  local i
  for i in $(seq 1 100); do scontrol ping >/dev/null 2>&1 && break; sleep 0.1; done
  scontrol ping >/dev/null 2>&1 || die "slurmctld did not start: $DIR/log/slurmctld.log"
  local py; py=$(command -v python3)
  for n in $(node_names); do
    setsid unshare --uts -- sh -c "hostname $n && exec $py $DIR/bin/reaper.py slurmd -D -f $SLURM_CONF -N $n" \
      </dev/null >>"$DIR/log/slurmd-$n.stdio" 2>&1 &
  done
  local deadline=$(( $(date +%s) + TIMEOUT ))
  while :; do
    local total idle
    total=$(sinfo -h -N -o '%N' 2>/dev/null | wc -l)
    idle=$(sinfo -h -N -o '%T' 2>/dev/null | grep -c '^idle$' || true)
    [ "$total" -ge "$NODES" ] && [ "$idle" -ge "$NODES" ] && break
    [ "$(date +%s)" -ge "$deadline" ] && { sinfo -N >&2; die "nodes not idle after ${TIMEOUT}s: see $DIR/log/"; }
    sleep 0.2
  done
  for n in $(node_names); do readlink "/proc/$(cat "$DIR/run/slurmd-$n.pid")/ns/uts" > "$DIR/run/uts-$n"; done
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
  local ctld; ctld=$(pid_in "$DIR/run/slurmctld.pid")
  if alive "$ctld" && scontrol ping >/dev/null 2>&1; then
    local jobs; jobs=$(squeue -h -o %A 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
      scancel $jobs 2>/dev/null || true
      local t; for t in $(seq 1 100); do [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break; sleep 0.1; done
    fi
  fi
  local pids="" f p
  for f in "$DIR"/run/slurmd-*.pid; do [ -f "$f" ] && { p=$(cat "$f"); alive "$p" && pids="$pids $p"; }; done
  alive "$ctld" && pids="$pids $ctld"
  stop_pids "$pids" 10
  # leftover job processes: those living in our nodes' UTS namespaces (never the machine's own)
  local mine left="" ns; mine=$(readlink /proc/self/ns/uts)
  for f in "$DIR"/run/uts-*; do
    [ -f "$f" ] || continue; ns=$(cat "$f"); [ -n "$ns" ] && [ "$ns" != "$mine" ] || continue
    for p in /proc/[0-9]*; do [ "$(readlink "$p/ns/uts" 2>/dev/null)" = "$ns" ] && left="$left ${p#/proc/}"; done
  done
  stop_pids "$left" 5
  p=$(pid_in "$DIR/run/slurmdbd.pid"); alive "$p" && stop_pids "$p" 10
  p=$(pid_in "$DIR/mysql/mysqld.pid"); alive "$p" && stop_pids "$p" 20
  p=$(pid_in "$DIR/munge/munged.pid"); alive "$p" && stop_pids "$p" 5
  rm -f "$DIR"/run/*.pid "$DIR"/run/uts-* "$DIR/munge/munged.pid" "$DIR/mysql/mysqld.pid"
  [[ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" == "$DIR/"* ]] && rm -f /etc/slurm/slurm.conf
  if [ -w /etc/hosts ] && grep -q "# hpc_tf-dev-cluster:$DIR\$" /etc/hosts; then
    local h; h=$(grep -v "# hpc_tf-dev-cluster:$DIR\$" /etc/hosts || true); printf '%s\n' "$h" > /etc/hosts
  fi
  log "down"
}

case "${1:-}" in
  install) [ "$(id -u)" = 0 ] || die "must run as root"; install_packages ;;
  up) up ;;
  down) down ;;
  status) if is_up; then sinfo; else echo "dev cluster is not up ($DIR)"; exit 1; fi ;;
  env) cat <<EOF
export SLURM_CONF=$SLURM_CONF
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
EOF
  ;;
  *) echo "usage: $0 install|up|down|status|env" >&2; exit 2 ;;
esac
