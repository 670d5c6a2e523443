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
# uvicorn's own lines (start-up, access) formatted like the service's: LOG_FORMAT=json|text
# (from the environment or .env), query strings left out of access lines.
# Written on every start (LOG_FORMAT may have changed), outside the tree: .venv can be shared.
log_config=$(mktemp "${TMPDIR:-/tmp}/llm-chat-log-config.XXXXXX.json")
.venv/bin/python -m services.observability.logs > "$log_config"
# Per-message deflate costs CPU on every token frame for a few bytes saved: off. The HTTP
# protocol bounds request heads and WebSocket frames by the settings (api/serving.py). Proxy
# headers off: uvicorn would believe X-Forwarded-For from loopback; the app reads it only
# from TRUSTED_PROXIES.
exec .venv/bin/python -m uvicorn main:app --host 127.0.0.1 --port 8000 --ws-per-message-deflate false \
  --http api.serving:LimitedHttpProtocol --no-server-header --no-proxy-headers --log-config "$log_config" "$@"
