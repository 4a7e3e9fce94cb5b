#!/usr/bin/env bash
# Bring up a single-node SLURM cluster on this machine, with accounting, for the workflow's
# SLURM test: munge, MariaDB, slurmdbd, slurmctld, slurmd, a partition and an account.
# Idempotent: running it again on the cluster it started changes nothing. Needs root and
# Debian's packages slurm-wlm slurmdbd mariadb-server munge (install_local_cluster.sh).
# Stop it with stop_local_cluster.sh.
#
# It does not touch what it did not set up. munged and MariaDB are private instances (own key,
# socket, data folder and port under /var/lib/slurm-local), so the host's munge key, munged,
# MariaDB and databases are never used. The only files it writes outside its own folders are
# /etc/slurm/slurm.conf and slurmdbd.conf (marked with MARKER): it refuses to start, changing
# nothing, when either exists without the mark, when a slurmctld, slurmd or slurmdbd runs that
# it did not start, or when this host reaches another SLURM (SLURM_CONF, configless). It keeps
# a pid file for every daemon it starts; stop_local_cluster.sh stops those and removes the two
# files. Set SLURM_TEST_DB_PORT (default 6833) if that port is taken.
set -euo pipefail

CLUSTER=${SLURM_TEST_CLUSTER:-snaketest}
PARTITION=${SLURM_TEST_PARTITION:-local}
ACCOUNT=${SLURM_TEST_ACCOUNT:-snaketest}
DB_PASSWORD=${SLURM_TEST_DB_PASSWORD:-slurmdbpass}
DB_PORT=${SLURM_TEST_DB_PORT:-6833}  # the private MariaDB, on 127.0.0.1 only
# shellcheck source=slurm/common.sh
source "$(dirname "$0")/common.sh"
NODE=$(hostname -s)
caller_slurm_conf=${SLURM_CONF:-}
export SLURM_CONF=$ETC/slurm.conf  # the commands below use our config

die() { log "$*"; exit 1; }
wait_for() {  # wait_for SECONDS DESCRIPTION LOGFILE COMMAND...: its log's end when it fails
  local seconds=$1 what=$2 logfile=$3; shift 3
  for _ in $(seq "$seconds"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  log "timed out waiting for $what; the end of $logfile:"
  tail -n 20 "$logfile" 2>/dev/null || true
  return 1
}
# ours PIDFILE DAEMON [ARGUMENT]: the pid in PIDFILE is a daemon this script started.
ours() { local pid; pid=$(cat "$1" 2>/dev/null) && is "$pid" "${@:2}"; }
# write_config FILE MODE: stdin, after MARKER, into FILE, unless it already holds exactly that
# (a second start changes nothing)
write_config() {
  local content
  content="$MARKER"$'\n'"$(cat)"
  [ -e "$1" ] && [ "$(cat "$1")" = "$content" ] && return 0
  (umask 077 && printf '%s\n' "$content" >"$1")
  chmod "$2" "$1"
  log "wrote $1"
  # a running daemon keeps its old settings
  if ours "$PID_SLURMCTLD" slurmctld || ours "$PID_SLURMDBD" slurmdbd; then
    log "the cluster runs with the old $1: restart it (stop_local_cluster.sh, then this)"
  fi
}

[ "$(id -u)" = 0 ] || die "needs root"
for tool in munged mariadbd mariadb-install-db slurmdbd slurmctld slurmd sacctmgr; do
  command -v "$tool" >/dev/null || die "$tool missing: run slurm/install_local_cluster.sh"
done

# Refuse before changing anything: a real SLURM on this host must stay as it is.
for conf in "$ETC/slurm.conf" "$ETC/slurmdbd.conf"; do
  if [ -e "$conf" ] && ! grep -qxF "$MARKER" "$conf"; then
    die "this host already has $conf, not written by this script; the local test cluster" \
      "would replace it: not touching it. Run the SLURM test on a machine without SLURM (a" \
      "fresh container or VM), or, if that SLURM is not in use, move $conf away yourself."
  fi
done
# Nor a SLURM found without a local file: a controller reached through DNS (configless
# SLURM, as on a cluster's login node), or one named by the caller's SLURM_CONF.
if [ -n "$caller_slurm_conf" ] && [ "$caller_slurm_conf" != "$SLURM_CONF" ]; then
  die "SLURM_CONF is set to $caller_slurm_conf: this host has a SLURM of its own, which the" \
    "SLURM test would submit to: not starting. Run it on a machine without SLURM."
fi
if [ ! -e "$ETC/slurm.conf" ] && env -u SLURM_CONF timeout 30 scontrol show config \
  >/dev/null 2>&1; then
  die "this host reaches a SLURM controller without $ETC/slurm.conf (configless SLURM); a" \
    "local $ETC/slurm.conf would hide it from this host's users: not touching it. Run the" \
    "SLURM test on a machine without SLURM (a fresh container or VM)."
fi
for daemon in slurmctld slurmd slurmdbd; do
  pidfile_var=PID_${daemon^^}
  for pid in $(pgrep -x "$daemon" || true); do
    readlink "/proc/$pid/exe" >/dev/null 2>&1 || continue  # a zombie: it has exited
    [ "$pid" = "$(cat "${!pidfile_var}" 2>/dev/null)" ] && ours "${!pidfile_var}" "$daemon" &&
      continue
    die "a $daemon (pid $pid) that this script did not start runs on this host: not touching" \
      "it. Run the SLURM test on a machine without SLURM (a fresh container or VM)."
  done
done

mkdir -p "$STATE"/{run,ctld,d} "$LOGS"
[ -d "$ETC" ] || { mkdir -p "$ETC" && touch "$STATE/created-etc-slurm"; }  # stop removes it

# munge: the key authenticates every SLURM message. A private munged with its own key and
# socket: the host's /etc/munge/munge.key and munged (if any) stay untouched.
install -d -o munge -g munge -m 755 "$STATE/munge"
if [ ! -s "$STATE/munge/munge.key" ]; then
  (umask 077 && dd if=/dev/urandom bs=1024 count=1 of="$STATE/munge/munge.key" 2>/dev/null)
  chown munge:munge "$STATE/munge/munge.key" && chmod 400 "$STATE/munge/munge.key"
fi
if ! ours "$PID_MUNGED" munged "$MUNGE_SOCKET"; then
  log "starting munged (private, socket $MUNGE_SOCKET)"
  runuser -u munge -- munged --socket="$MUNGE_SOCKET" --key-file="$STATE/munge/munge.key" \
    --pid-file="$PID_MUNGED" --log-file="$STATE/munge/munged.log" \
    --seed-file="$STATE/munge/munged.seed"
  wait_for 20 munged "$STATE/munge/munged.log" munge -n -S "$MUNGE_SOCKET"
fi

# MariaDB behind slurmdbd (without accounting, sacct cannot tell Snakemake a job finished).
# A private server (--no-defaults: none of the host's MariaDB settings) on its own data folder,
# socket and port: the host's MariaDB and databases stay untouched.
if [ ! -d "$STATE/mysql/mysql" ]; then
  log "creating the private MariaDB in $STATE/mysql"
  install -d -o mysql -g mysql -m 750 "$STATE/mysql"
  mariadb-install-db --no-defaults --user=mysql --datadir="$STATE/mysql" --skip-test-db \
    --auth-root-authentication-method=socket >"$LOGS/mariadb-install-db.log" 2>&1
fi
if ! ours "$PID_MARIADBD" mariadbd "$STATE/mysql"; then
  log "starting MariaDB (private, 127.0.0.1:$DB_PORT)"
  install -o mysql -g mysql -m 640 /dev/null "$LOGS/mariadb.log"
  setsid -f mariadbd --no-defaults --user=mysql --datadir="$STATE/mysql" \
    --socket="$DB_SOCKET" --pid-file="$PID_MARIADBD" --log-error="$LOGS/mariadb.log" \
    --bind-address=127.0.0.1 --port="$DB_PORT" --skip-name-resolve \
    </dev/null >/dev/null 2>&1
  wait_for 60 MariaDB "$LOGS/mariadb.log" \
    mariadb --no-defaults --socket="$DB_SOCKET" -u root -e "SELECT 1"
fi
mariadb --no-defaults --socket="$DB_SOCKET" -u root <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
SQL

cpus=$(nproc)
memory_mb=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024))
write_config "$ETC/slurmdbd.conf" 600 <<CONF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASSWORD
StorageLoc=slurm_acct_db
LogFile=$LOGS/slurmdbd.log
PidFile=$PID_SLURMDBD
CONF
write_config "$ETC/slurm.conf" 644 <<CONF
ClusterName=$CLUSTER
SlurmctldHost=$NODE
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
# In a container without cgroup delegation: track processes through /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$PID_SLURMCTLD
SlurmdPidFile=$PID_SLURMD
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
# the munge socket for slurmdbd connections (they do not read AuthInfo)
AccountingStoragePass=$MUNGE_SOCKET
AccountingStorageEnforce=associations
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
MinJobAge=300
NodeName=$NODE CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF

if ! ours "$PID_SLURMDBD" slurmdbd; then
  log "starting slurmdbd"
  slurmdbd
  wait_for 60 slurmdbd "$LOGS/slurmdbd.log" sacctmgr -n list cluster
fi
# Read first, then grep: grep -q ending a pipe early would fail it under pipefail.
clusters=$(sacctmgr -n list cluster format=cluster)
grep -qw "$CLUSTER" <<<"$clusters" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
accounts=$(sacctmgr -n list account format=account)
grep -qw "$ACCOUNT" <<<"$accounts" ||
  sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description=workflow-tests >/dev/null
associations=$(sacctmgr -n list assoc user="$(id -un)" format=account)
grep -qw "$ACCOUNT" <<<"$associations" ||
  sacctmgr -i add user "$(id -un)" Account="$ACCOUNT" Cluster="$CLUSTER" >/dev/null

if ! ours "$PID_SLURMCTLD" slurmctld; then
  log "starting slurmctld"
  slurmctld
  wait_for 60 slurmctld "$LOGS/slurmctld.log" bash -c 'scontrol ping | grep -q UP'
fi
if ! ours "$PID_SLURMD" slurmd; then
  log "starting slurmd"
  slurmd
fi
state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null || true)
case $state in down* | drain*) scontrol update nodename="$NODE" state=resume || true ;; esac
wait_for 60 "node $NODE to be idle" "$LOGS/slurmd.log" \
  bash -c "sinfo -h -n $NODE -o %T | grep -Eq 'idle|mixed|allocated'"
log "up: cluster $CLUSTER, partition $PARTITION, account $ACCOUNT, node $NODE ($cpus CPUs," \
  "$memory_mb MB)"
