#!/usr/bin/env bash
# PostgreSQL for the tests that write to a real server (tests/postgres.py starts one on a free loopback
# port in a temporary folder and stops it after): Debian's `postgresql` package, installed with apt-get
# when no initdb is found under /usr/lib/postgresql. Run by cicd_pipeline.sh; a no-op when it is there.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  exit 0
fi
source "$(dirname "$0")/apt_install.sh"
apt_install setup_postgres postgresql
