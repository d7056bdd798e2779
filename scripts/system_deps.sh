#!/usr/bin/env bash
# Debian packages some tests need: chromium (the Dagster UI test), slurm-wlm and munge
# (the Slurm launcher tests start a one-node cluster), postgresql (its server binaries under
# /usr/lib/postgresql/<version>/bin: the cluster tests start a real Postgres for the
# instance's storage; the package's own service is not used). As root they are
# installed with apt-get when missing; otherwise the tests that need them skip with the
# reason. Under CI (CI=true) a failed install fails the run.
set -euo pipefail
PACKAGES=(${SCONE_SYSTEM_PACKAGES:-chromium fonts-dejavu-core slurm-wlm munge postgresql})
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "error: CI needs ${missing[*]} but is not running as root" >&2
    exit 1
  fi
  echo "note: not root; tests needing ${missing[*]} will be skipped"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
echo "installing ${missing[*]} with apt-get"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
