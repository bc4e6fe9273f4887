#!/usr/bin/env bash
# Make sure the real PostgreSQL and Redis that the integration tests use are up,
# starting them with the machine notes' commands when they are down, and create
# the databases named as arguments. Idempotent: a no-op when all is running.
#
#   scripts/services.sh [DATABASE...]
#
# Not root: PostgreSQL's cluster is started through sudo, and Redis runs as you with
# its files under $TMPDIR. The tests connect as user postgres without a password.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
  redis_dir=/var/lib/redis redis_log=/var/log/redis/ci.log
else
  as_root=(sudo)
  redis_dir="${TMPDIR:-/tmp}/gateway-redis-$(id -u)" redis_log="${TMPDIR:-/tmp}/gateway-redis-$(id -u)/redis.log"
fi

if ! pg_up; then
  echo "services: starting PostgreSQL"
  "${as_root[@]}" pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start
fi
if ! redis_up; then
  echo "services: starting Redis"
  mkdir -p "$redis_dir" "$(dirname "$redis_log")"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir "$redis_dir" --logfile "$redis_log"
fi

for _ in $(seq 1 100); do
  if pg_up && redis_up; then break; fi
  sleep 0.2
done
pg_up || { echo "services: PostgreSQL is not accepting connections on 127.0.0.1:5432" >&2; exit 1; }
redis_up || { echo "services: Redis does not answer PING on 127.0.0.1:6379" >&2; exit 1; }
if ! psql -w -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1" >/dev/null 2>&1; then
  echo "services: PostgreSQL refuses user postgres from 127.0.0.1 without a password; the tests connect" >&2
  echo "services: that way: add 'host all postgres 127.0.0.1/32 trust' to pg_hba.conf and reload" >&2
  exit 1
fi

for db in "$@"; do
  exists=$(psql -w -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")
  if [ "$exists" != "1" ]; then
    echo "services: creating database $db"
    createdb -h 127.0.0.1 -U postgres "$db"
  fi
done
