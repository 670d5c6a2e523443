#!/usr/bin/env bash
# Regenerates the lock files from pyproject.toml: requirements.lock (what run.sh installs)
# and requirements-dev.lock (what test.sh and CI install), every package pinned with its
# hashes, for any platform and Python 3.11+. Run it after changing the dependencies in
# pyproject.toml, and commit the three files together. Pins already in the lock files are
# kept; extra arguments go to `uv pip compile`, e.g.
#   ./scripts/lock.sh --upgrade                 # everything to the newest allowed
#   ./scripts/lock.sh --upgrade-package redis   # one package
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-}
if [ -z "$UV" ]; then
  if [ -x .venv/bin/uv ]; then UV=.venv/bin/uv
  elif command -v uv >/dev/null 2>&1; then UV=uv
  else echo "uv not found: ./scripts/test.sh installs it into .venv (or: pip install uv)" >&2; exit 1
  fi
fi
common=(pyproject.toml --universal --python-version 3.11 --generate-hashes --quiet
        --custom-compile-command ./scripts/lock.sh)
"$UV" pip compile "${common[@]}" -o requirements.lock "$@"
"$UV" pip compile "${common[@]}" --extra dev -o requirements-dev.lock "$@"
echo "==> requirements.lock and requirements-dev.lock written"
