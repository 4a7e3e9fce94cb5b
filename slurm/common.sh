# shellcheck shell=bash disable=SC2034  # the variables are used by the scripts that source it
# Shared by start_local_cluster.sh and stop_local_cluster.sh (sourced, not run): where the local
# test cluster keeps its state, the marker of the files it writes, and how a pid is recognised
# as one of its daemons.
ETC=/etc/slurm
STATE=/var/lib/slurm-local
LOGS=/var/log/slurm-local
# The first line of every file start writes outside $STATE; stop removes only files carrying it.
MARKER="# Written by slurm/start_local_cluster.sh (local test cluster); stop_local_cluster.sh removes it."
MUNGE_SOCKET=$STATE/munge/munge.socket.2
DB_SOCKET=$STATE/mysql/mysqld.sock
# Pid files of the daemons start starts.
PID_MUNGED=$STATE/munge/munged.pid
PID_MARIADBD=$STATE/mysql/mariadbd.pid
PID_SLURMDBD=$STATE/run/slurmdbd.pid
PID_SLURMCTLD=$STATE/run/slurmctld.pid
PID_SLURMD=$STATE/run/slurmd.pid

log() { echo "[slurm-local] $*"; }
# is PID DAEMON [ARGUMENT]: PID is a live DAEMON (by its executable) whose command line holds
# ARGUMENT.
is() {
  local exe command
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1  # also fails for a zombie
  [ "${exe% (deleted)}" = "$(readlink -f "$(command -v "$2")")" ] || return 1
  command=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ $command == *"${3:-}"* ]]
}
