#!/usr/bin/env bash
# Install what start_local_cluster.sh needs (Debian/Ubuntu, as root). Skips what is present.
set -euo pipefail
packages=(slurm-wlm slurmdbd mariadb-server munge)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[slurm-local] installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
