#!/usr/bin/env bash
# Installs the service into .venv (once, and again when requirements change) and runs it on
# http://127.0.0.1:8000 with the embedded default: SQLite in ./data, in-process workers,
# the offline model. Extra arguments go to uvicorn (e.g. --reload, --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing requirements (first run takes a minute)"
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -r requirements.txt
  echo "$want" > "$stamp"
fi
echo "==> serving on http://127.0.0.1:8000 (web UI at /, API docs at /docs)"
# Per-message deflate costs CPU on every token frame for a few bytes saved: off. The HTTP
# protocol bounds request heads and WebSocket frames by the settings (api/serving.py).
exec .venv/bin/python -m uvicorn main:app --host 127.0.0.1 --port 8000 --ws-per-message-deflate false \
  --http api.serving:LimitedHttpProtocol --no-server-header "$@"
