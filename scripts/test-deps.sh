#!/usr/bin/env bash
# Install the system packages the test suite needs, only those that are missing:
# Chromium (the console's browser tests), promtool from the prometheus package (the
# alert rules), amtool from prometheus-alertmanager (the alert routing), wrk (the benchmark smoke test), the PostgreSQL and Redis servers and
# clients (integration tests; scripts/services.sh starts them; redis-server also runs
# the Sentinel tests' primary, replica and sentinels), HAProxy (the deployment tests'
# load balancer), docker-compose (validates deploy/compose.yaml offline when no
# `docker compose` is there), make, and python3-venv while there is no .venv yet. `make test` runs this first, and so does .ci/run.
#
# Debian/Ubuntu (apt-get). As root it installs; otherwise through sudo when there is
# one; else it names the missing packages and fails, so nothing is skipped unseen.
#
#   scripts/test-deps.sh            # install what is missing
#   scripts/test-deps.sh --check    # only say what is missing (exit 1 if anything)
set -euo pipefail
cd "$(dirname "$0")/.."

# Commands found on PATH -> the Debian package that provides them.
declare -A by_command=(
  [promtool]=prometheus
  [amtool]=prometheus-alertmanager
  [wrk]=wrk
  [make]=make
  [pg_isready]=postgresql-client
  [psql]=postgresql-client
  [createdb]=postgresql-client
  [redis-cli]=redis-tools
  [redis-server]=redis-server
  [haproxy]=haproxy
  [ip]=iproute2
  [docker-compose]=docker-compose
)

missing_packages() {
  local -A wanted=()
  local cmd
  for cmd in "${!by_command[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || wanted[${by_command[$cmd]}]=1
  done
  # The browser test launches this exact path (tests/e2e/test_ops_console_browser.py).
  [ -x /usr/bin/chromium ] || wanted[chromium]=1
  # A PostgreSQL server: one already listening (a container, another host's tunnel)
  # will do; otherwise the Debian cluster tools that scripts/services.sh starts it with.
  if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && ! command -v pg_ctlcluster >/dev/null 2>&1; then
    wanted[postgresql]=1
  fi
  # `python3 -m venv` needs ensurepip, which Debian ships apart.
  if [ ! -x .venv/bin/python ] && ! "${PYTHON:-python3}" -c 'import ensurepip' >/dev/null 2>&1; then
    wanted[python3-venv]=1
  fi
  if ((${#wanted[@]})); then printf '%s\n' "${!wanted[@]}" | sort; fi
}

mapfile -t missing < <(missing_packages)
((${#missing[@]})) || exit 0

if [ "${1:-}" = "--check" ]; then
  echo "test-deps: missing: ${missing[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "test-deps: missing system packages (Debian names): ${missing[*]}" >&2
  echo "test-deps: no apt-get here; install their equivalents with your package manager, then rerun" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "test-deps: missing system packages: ${missing[*]}" >&2
  echo "test-deps: not root and no sudo; as root run: apt-get install --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "test-deps: installing ${missing[*]}"
# Packages with daemons (prometheus, redis-server, postgresql) must not start them on
# this machine: a policy-rc.d that exits 101 tells their install scripts not to, for
# this install only (scripts/services.sh starts PostgreSQL and Redis the way tests want).
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  "${as_root[@]}" sh -c "printf '#!/bin/sh\nexit 101\n' >$policy && chmod +x $policy"
  trap '"${as_root[@]}" rm -f "$policy"' EXIT
fi
if ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
  || ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
  echo "test-deps: could not install ${missing[*]}" >&2
  echo "test-deps: as root run: apt-get install --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

mapfile -t still < <(missing_packages)
if ((${#still[@]})); then
  echo "test-deps: installed, but still missing: ${still[*]}" >&2
  exit 1
fi
