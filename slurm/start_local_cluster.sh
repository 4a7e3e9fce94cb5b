#!/usr/bin/env bash
# Bring up a single-node SLURM cluster on this machine, with accounting, for the workflow's
# SLURM test: munge, MariaDB, slurmdbd, slurmctld, slurmd, a partition and an account.
# Idempotent: running it again on a running cluster changes nothing. Needs root and Debian's
# packages slurm-wlm slurmdbd mariadb-server munge (install_local_cluster.sh installs them).
# Stop it with stop_local_cluster.sh.
set -euo pipefail

CLUSTER=${SLURM_TEST_CLUSTER:-snaketest}
PARTITION=${SLURM_TEST_PARTITION:-local}
ACCOUNT=${SLURM_TEST_ACCOUNT:-snaketest}
DB_PASSWORD=${SLURM_TEST_DB_PASSWORD:-slurmdbpass}
ETC=/etc/slurm
STATE=/var/lib/slurm-local
LOGS=/var/log/slurm-local
NODE=$(hostname -s)

log() { echo "[slurm-local] $*"; }
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2; shift 2
  for _ in $(seq "$seconds"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  log "timed out waiting for $what"; return 1
}

[ "$(id -u)" = 0 ] || { log "needs root"; exit 1; }
for tool in munged mariadbd slurmdbd slurmctld slurmd sacctmgr; do
  command -v "$tool" >/dev/null || { log "$tool missing: run slurm/install_local_cluster.sh"; exit 1; }
done
mkdir -p "$ETC" "$STATE"/{ctld,d} "$LOGS" /run/munge /run/mysqld

# munge: the key authenticates every SLURM message
[ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
chown munge:munge /etc/munge/munge.key /run/munge && chmod 400 /etc/munge/munge.key
if ! munge -n >/dev/null 2>&1; then
  log "starting munged"
  runuser -u munge -- /usr/sbin/munged
  wait_for 20 munged munge -n
fi

# MariaDB behind slurmdbd: without accounting, sacct cannot tell Snakemake a job finished
chown mysql:mysql /run/mysqld
if ! mysqladmin ping >/dev/null 2>&1; then
  log "starting MariaDB"
  [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
  (setsid mysqld_safe --user=mysql >"$LOGS/mysqld_safe.log" 2>&1 &)
  wait_for 60 MariaDB mysqladmin ping
fi
mysql -u root <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL

cpus=$(nproc)
memory_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
cat >"$ETC/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASSWORD
StorageLoc=slurm_acct_db
LogFile=$LOGS/slurmdbd.log
PidFile=/run/slurmdbd.pid
CONF
chmod 600 "$ETC/slurmdbd.conf"
cat >"$ETC/slurm.conf" <<CONF
ClusterName=$CLUSTER
SlurmctldHost=$NODE
SlurmUser=root
AuthType=auth/munge
# In a container without cgroup delegation: track processes through /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageEnforce=associations
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
MinJobAge=300
NodeName=$NODE CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF

if ! sacctmgr -n list cluster >/dev/null 2>&1; then
  log "starting slurmdbd"
  /usr/sbin/slurmdbd
  wait_for 60 slurmdbd sacctmgr -n list cluster
fi
sacctmgr -n list cluster format=cluster | grep -qw "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
sacctmgr -n list account format=account | grep -qw "$ACCOUNT" ||
  sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description=workflow-tests >/dev/null
sacctmgr -n list assoc user="$(id -un)" format=account | grep -qw "$ACCOUNT" ||
  sacctmgr -i add user "$(id -un)" Account="$ACCOUNT" Cluster="$CLUSTER" >/dev/null

if ! scontrol ping 2>/dev/null | grep -q UP; then
  log "starting slurmctld"
  /usr/sbin/slurmctld
  wait_for 60 slurmctld bash -c 'scontrol ping | grep -q UP'
fi
if ! pgrep -x slurmd >/dev/null; then
  log "starting slurmd"
  /usr/sbin/slurmd
fi
scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true
wait_for 60 "node $NODE to be idle" bash -c "sinfo -h -n $NODE -o %T | grep -Eq 'idle|mixed|allocated'"
log "up: cluster $CLUSTER, partition $PARTITION, account $ACCOUNT, node $NODE ($cpus CPUs, $memory_mb MB)"
