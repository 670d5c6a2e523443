#!/usr/bin/env bash
# Installs everything the tests need and runs the whole suite: requirements-dev.lock (pinned,
# hash-checked) into .venv, Debian's chromium for the browser tests, and PostgreSQL, Redis and RabbitMQ for
# the scale-out tests (started here when they are down, never skipped). Extra arguments go
# to pytest (e.g. -k resume, -x; a run of part of the suite is under the coverage bar: add
# --no-cov). Coverage is measured on every run, in the service's child processes too
# ([tool.coverage.*] in pyproject.toml), and the run fails under its fail_under. The groups
# (tests/groups.py): `-m unit` needs none of the servers below, nor chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v chromium >/dev/null 2>&1; then
  echo "==> installing Debian's chromium for the browser tests"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 1; done
  echo "$2 did not come up on port $1" >&2; return 1
}
if ! port_open 5432; then
  echo "==> starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  wait_port 5432 PostgreSQL
fi
if ! port_open 6379; then
  echo "==> starting Redis"
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port 6379 Redis
fi
if ! port_open 5672; then
  echo "==> starting RabbitMQ"
  as_root rabbitmq-server -detached
  wait_port 5672 RabbitMQ
fi

rm -f .coverage .coverage.*  # the data of an earlier run would be combined into this one
exec .venv/bin/python -m pytest --cov --cov-report=term "$@"
