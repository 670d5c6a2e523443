"""Schemathesis over the service's own OpenAPI schema, against a real server, as an outside
battery runs it: every check, every phase (stateful included), at least 100 examples per
operation, signed in as a registered user. Any failure fails the test; its report (with
`curl` lines to reproduce) is the assertion message."""

import asyncio
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support import Server, make_settings, register

pytestmark = pytest.mark.security

EXAMPLES = 100  # per operation and phase
# Concurrent request streams: the server mostly waits (database threads, the model), so
# four keep two cores busier than two do; the times are in the commit that chose it.
WORKERS = 4
THREADSAFE_CLI = Path(__file__).with_name("schemathesis_threadsafe.py")  # the CLI, ast.parse locked
CONFIG = Path(__file__).with_name("schemathesis.toml")  # what the schema cannot state
REQUEST_TIMEOUT = 10  # seconds; a stream of the offline model ends well within it


def schemathesis_args(server: Server, token: str, report: str) -> list[str]:
    return [
        sys.executable,
        str(THREADSAFE_CLI),
        "--config-file",
        str(CONFIG),
        "run",
        f"{server.base}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(EXAMPLES),
        "--workers",
        str(WORKERS),
        "--request-timeout",
        str(REQUEST_TIMEOUT),
        "--header",
        f"Authorization: Bearer {token}",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        report,
    ]


def operation_count(schema: dict) -> int:
    return sum(1 for ops in schema["paths"].values() for m in ops if m in {"get", "post", "patch", "delete", "put"})


@pytest.mark.timeout(300)
async def test_schemathesis_finds_nothing(tmp_path):
    # One user sends thousands of requests here, as no person does: lift the per-user limits
    # (tests/test_user_limits.py covers them), or most operations would answer 429 and go untested.
    server = await Server(
        make_settings(
            tmp_path,
            user_requests_per_minute=1_000_000,
            user_sessions_per_hour=1_000_000,
            user_max_queued_generations=100_000,
            user_max_running_generations=10_000,
            user_max_open_streams=100_000,
        )
    ).start()
    try:
        async with server.client() as client:
            token = await register(client, "fuzzer")
            operations = operation_count((await client.get("/openapi.json")).json())
        report = str(tmp_path / "junit.xml")
        proc = await asyncio.create_subprocess_exec(
            *schemathesis_args(server, token, report),
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output = (await proc.communicate())[0].decode(errors="replace")
    finally:
        await server.stop()

    assert proc.returncode == 0, output[-30000:]
    tested = re.search(r"Tested: (\d+)", output)
    assert tested and int(tested.group(1)) == operations, output[-3000:]
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert re.search(rf"✅ {phase}", output), f"{phase} phase did not pass:\n{output[-3000:]}"
    suite = ET.parse(report).getroot()
    cases = suite.iter("testcase")
    assert sum(1 for _ in cases) >= operations
    assert not [c for c in suite.iter("testcase") if c.find("failure") is not None or c.find("error") is not None]
