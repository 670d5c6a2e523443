#!/usr/bin/env bash
# The static gates, run by .ci/run before the tests (the settings are in pyproject.toml):
#   ruff check          lint: pycodestyle, pyflakes, import order, pyupgrade, bugbear
#   ruff format --check the formatting (line length 120); `ruff format .` applies it
#   mypy                types: strict on api/, auth/, models/, services/ and the entry points
# Every gate runs even when one before it failed, so one run lists all the findings; the
# exit status is non-zero if any failed. Extra arguments go to mypy (e.g. a path).
# The tools are those of requirements-dev.lock in .venv (scripts/venv.sh installs them).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/mypy ] || [ ! -x .venv/bin/ruff ]; then
  echo "no ruff or mypy in .venv: run ./scripts/venv.sh first" >&2
  exit 2
fi
status=0
run() {
  echo "==> $*"
  "$@" || status=1
}
run .venv/bin/ruff check .
run .venv/bin/ruff format --check .
run .venv/bin/mypy "$@"
exit $status
