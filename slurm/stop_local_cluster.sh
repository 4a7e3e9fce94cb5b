#!/usr/bin/env bash
# Stop the single-node SLURM cluster of start_local_cluster.sh, and only that: the daemons it
# started, found through the pid files it keeps under /var/lib/slurm-local, each checked to
# still be that daemon before it is signalled (never by name). Then it removes the config files
# it wrote in /etc/slurm (those carrying its marker line), so the host is as before the start:
# with SLURM installed but no slurm.conf, SLURM's commands fail at once instead of waiting for
# a controller. Its state and database stay under /var/lib/slurm-local, so a later start is
# quick. Safe to run when nothing runs.
set -euo pipefail

# shellcheck source=slurm/common.sh
source "$(dirname "$0")/common.sh"

stop() {  # stop DAEMON PIDFILE [ARGUMENT]
  local pid
  [ -e "$2" ] || return 0  # never started, or stopped already
  pid=$(cat "$2" 2>/dev/null || true)
  if ! is "$pid" "$1" "${3:-}"; then
    log "$2 names pid ${pid:-?}, which is not the $1 that start_local_cluster.sh started" \
      "(that one has exited): not signalling it"
    rm -f "$2"
    return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 60); do is "$pid" "$1" "${3:-}" || break; sleep 0.5; done
  if is "$pid" "$1" "${3:-}"; then
    log "$1 (pid $pid) ignored TERM for 30 s: killing it"
    kill -KILL "$pid"
  fi
  rm -f "$2"
  log "stopped $1 (pid $pid)"
}

[ "$(id -u)" = 0 ] || { log "needs root"; exit 1; }
# In the reverse order of the start; the pid files are those start_local_cluster.sh names.
stop slurmd "$PID_SLURMD"
stop slurmctld "$PID_SLURMCTLD"
stop slurmdbd "$PID_SLURMDBD"
stop mariadbd "$PID_MARIADBD" "$STATE/mysql"
stop munged "$PID_MUNGED" "$MUNGE_SOCKET"

for conf in "$ETC/slurm.conf" "$ETC/slurmdbd.conf"; do
  [ -e "$conf" ] || continue
  if grep -qxF "$MARKER" "$conf"; then
    rm -f "$conf" && log "removed $conf"
  else
    log "$conf was not written by start_local_cluster.sh: left as it is"
  fi
done
if [ -e "$STATE/created-etc-slurm" ]; then
  rmdir "$ETC" 2>/dev/null || true  # only if empty: anything else in it is not ours
  rm -f "$STATE/created-etc-slurm"
fi
exit 0
