#!/usr/bin/env bash
# Makes .venv hold exactly requirements-dev.lock (pinned, hash-checked), installing it once
# and again whenever the lock changes. Run by .ci/run before the gates (scripts/lint.sh)
# and sourced by scripts/test.sh, so the gates and the tests run on the same versions.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=.venv/.requirements-dev.sha
want=$(sha256sum requirements-dev.lock | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing requirements-dev.lock"
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet --require-hashes -r requirements-dev.lock
  echo "$want" > "$stamp"
fi
