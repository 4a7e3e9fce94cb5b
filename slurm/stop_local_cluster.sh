#!/usr/bin/env bash
# Stop the single-node SLURM cluster of start_local_cluster.sh (its state and database stay,
# so a later start is quick). Safe to run when nothing is running.
set -u
for daemon in slurmd slurmctld slurmdbd; do
  pkill -x "$daemon" && echo "[slurm-local] stopped $daemon"
done
mysqladmin shutdown 2>/dev/null && echo "[slurm-local] stopped MariaDB"
pkill -x munged && echo "[slurm-local] stopped munged"
exit 0
