"""The official `openai` package for Node (tests/node, pinned by its package-lock.json)
against a real server: a streamed chat completion and a background response resumed after
the client dropped mid-answer, both checked against what the service stored."""

import asyncio
import json
import os
from pathlib import Path

import pytest

from tests.support import make_settings

NODE_DIR = Path(__file__).parent / "node"


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path, time_between_chunks=0.01)


async def run(*args: str, env: dict | None = None, timeout: float = 240) -> str:
    proc = await asyncio.create_subprocess_exec(
        *args,
        cwd=NODE_DIR,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode == 0, err.decode()[-2000:]
    return out.decode()


async def test_node_sdk_streams_chat_and_resumes_a_background_response(server, auth, token):
    if not (NODE_DIR / "node_modules" / "openai").exists():
        await run("npm", "ci", "--no-audit", "--no-fund")
    out = await run("node", "openai_check.mjs", env={"BASE_URL": server.base + "/v1", "API_KEY": token})
    result = json.loads(out.strip().splitlines()[-1])
    chat = (await auth.get(f"/generations/{result['chatId'].removeprefix('chatcmpl-')}")).json()
    assert chat["status"] == "completed" and result["chatText"] == chat["content"]
    assert "> Hello from Node" in chat["content"] and result["usage"]["completion_tokens"] > 0
    response = (await auth.get(f"/v1/responses/{result['responseId']}")).json()
    assert result["status"] == response["status"] == "completed"
    text = response["output"][0]["content"][0]["text"]
    assert result["before"] and result["before"] + result["after"] == text
    assert result["numbers"] == list(range(result["last"] + 1, result["last"] + 1 + len(result["numbers"])))
