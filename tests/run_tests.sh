#!/usr/bin/env bash
# Install everything the test suite needs, then run it. CI runs exactly this (.ci/run).
#   bash tests/run_tests.sh [pytest args...]
# As root (CI, a fresh machine) it also installs Debian packages: CDO (benchmark peer),
# Chromium (report test) and a one-node SLURM cluster (SLURM tests), and starts SLURM.
set -euo pipefail
cd "$(dirname "$0")/.."
ts() { date +%T; }

if [[ $(id -u) -eq 0 ]]; then
  export DEBIAN_FRONTEND=noninteractive
  need=()
  for pkg in cdo chromium; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
  done
  if ((${#need[@]})); then
    echo "[$(ts)] apt-get install ${need[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi

[[ -x .venv/bin/python ]] || python3 -m venv .venv
# the docs extra too: tests/workflow/demo_run/test_docs.py builds the documentation site (mkdocs build --strict, offline)
echo "[$(ts)] pip install -e .[test,docs]"
.venv/bin/pip install -q --disable-pip-version-check -e '.[test,docs]'

# The SLURM tests (tests/workflow/slurm/test_slurm.py) need a running one-node cluster: munge, MariaDB, slurmdbd
# (accounting, so sacct works), slurmctld and slurmd, installed from Debian and started without
# systemd by tests/slurm/start_local_slurm.sh (idempotent; ~75 s the first time, seconds after).
# It stays up for the whole pytest session and after it (stop: bash tests/slurm/stop_local_slurm.sh).
if [[ $(id -u) -eq 0 ]]; then
  echo "[$(ts)] start the local SLURM cluster"
  bash tests/slurm/start_local_slurm.sh
fi

# Two pytest-xdist workers; --dist loadgroup keeps the files that share a session-built workflow run (and the
# SLURM files) on one worker (tests/conftest.py: the folders of tests/workflow/ are the groups). `-n 0` as an argument runs serially.
echo "[$(ts)] pytest"
exec .venv/bin/pytest -n 2 --dist loadgroup "$@"
