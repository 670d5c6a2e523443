#!/usr/bin/env bash
# The lowest versions pyproject.toml allows (`uv pip install --resolution lowest-direct`, in
# .venv-lowest, apart from .venv) and the unit tests on them: the tests that need no
# PostgreSQL, Redis, RabbitMQ or browser, but do drive FastAPI, uvicorn, websockets and the
# provider SDKs for real (the unit and integration groups of tests/groups.py). No coverage here:
# the bar is the suite's, on the locked versions. A lower bound that is too low fails here. .ci/run runs it after
# the suite; needs uv (in requirements-dev.lock, so in .venv after ./scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
UV=${UV:-.venv/bin/uv}
[ -x .venv-lowest/bin/python ] || "$PYTHON" -m venv .venv-lowest
stamp=.venv-lowest/.pyproject.sha
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing the lowest allowed versions into .venv-lowest"
  "$UV" pip install --quiet --python .venv-lowest/bin/python --resolution lowest-direct --reinstall \
    -r pyproject.toml --extra dev
  echo "$want" > "$stamp"
fi
unit_tests=(tests/test_loop_detector.py tests/test_memory_log.py tests/test_openai_stream_parsing.py
            tests/test_provider_registry.py tests/test_serial_thread.py tests/test_push_relay.py
            tests/test_auth.py tests/test_sessions.py tests/test_chat.py tests/test_ws.py
            tests/test_providers.py tests/test_anthropic.py tests/test_resume.py
            tests/test_cancel_and_guards.py)
echo "==> unit tests on the lowest allowed versions"
exec .venv-lowest/bin/python -m pytest -m "unit or integration" "${unit_tests[@]}" "$@"
