#!/usr/bin/env bash
# Install what start_local_cluster.sh needs (Debian/Ubuntu, as root). Skips what is present.
# On a host with systemd, Debian also enables the packages' own services (munge and mariadb
# start at once); the local test cluster uses none of them: it runs a munged and a MariaDB of
# its own under /var/lib/slurm-local.
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
