#!/usr/bin/env bash
# Installs the service into .venv (once, and again when requirements.lock changes: exactly
# the pinned, hash-checked versions CI tested) and runs it on http://127.0.0.1:8000 with the
# embedded default: SQLite in ./data, in-process workers, the offline model. Extra arguments
# go to uvicorn (e.g. --reload, --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$(sha256sum requirements.lock | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing requirements.lock (first run takes a minute)"
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet --require-hashes -r requirements.lock
  echo "$want" > "$stamp"
fi
# The address uvicorn will serve on: the defaults below, or the last --host/--port given.
host=127.0.0.1 port=8000 prev=
for arg in "$@"; do
  case "$prev" in --host) host=$arg ;; --port) port=$arg ;; esac
  case "$arg" in --host=*) host=${arg#--host=} ;; --port=*) port=${arg#--port=} ;; esac
  prev=$arg
done
echo "==> serving on http://$host:$port (web UI at /, API docs at /docs)"
# serve.py: uvicorn serving `--factory main:create_app` with the service's options (bounded
# request heads and WebSocket frames, no per-message deflate, no proxy headers: the app reads
# X-Forwarded-For only from TRUSTED_PROXIES), uvicorn's lines formatted as LOG_FORMAT asks
# (query strings left out of access lines) and the graceful stop of api/lifecycle.py.
exec .venv/bin/python -m serve --host 127.0.0.1 --port 8000 "$@"
