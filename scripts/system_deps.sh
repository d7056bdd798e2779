#!/usr/bin/env bash
# Installs the Debian packages that some tests need (none yet beyond Python).
# Later stages add slurm-wlm, munge and chromium here; as root they are
# installed with apt-get, otherwise the tests that need them skip with a reason.
set -euo pipefail
PACKAGES=(${SCONE_SYSTEM_PACKAGES:-})
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "note: not root; tests needing ${missing[*]} will be skipped"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
