"""LOG_FORMAT=json: every line a real server process writes is one JSON object (uvicorn's
start-up and access lines included), with one event per request and per generation end,
and no password, token or message text anywhere."""

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import websockets

from tests.support import PASSWORD, free_port

ROOT = Path(__file__).resolve().parent.parent
MESSAGE = "my-private-message-text-4711"


async def _wait_up(base: str, proc: subprocess.Popen) -> None:
    async with asyncio.timeout(30):
        while True:
            try:
                async with httpx.AsyncClient() as c:
                    if (await c.get(f"{base}/livez")).status_code == 200:
                        return
            except httpx.TransportError:
                pass
            assert proc.poll() is None, "server exited during start-up"
            await asyncio.sleep(0.1)


async def _exercise(base: str) -> dict:
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        await c.post("/users", json={"username": "logan", "password": PASSWORD})
        r = await c.post("/token", data={"username": "logan", "password": PASSWORD})
        token = r.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "X-Request-ID": "req-json-1"}
        r = await c.post("/chat", json={"message": MESSAGE}, headers=headers)
        assert r.status_code == 200 and r.headers["x-request-id"] == "req-json-1"
        await c.get(f"/sessions?token={token}&limit=5", headers={"Authorization": f"Bearer {token}"})
    ws_url = base.replace("http", "ws") + f"/ws/{r.json()['session_id']}"
    async with websockets.connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        await ws.send('{"type": "ping"}')
        assert json.loads(await ws.recv()) == {"type": "pong"}
    return {"token": token, "chat": r.json()}


async def test_every_line_is_json_with_request_and_generation_events(tmp_path):
    config = subprocess.run(
        [sys.executable, "-m", "services.observability.logs"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "LOG_FORMAT": "json"},
    ).stdout
    (tmp_path / "log.json").write_text(config)
    port = free_port()
    env = {**os.environ, "LOG_FORMAT": "json", "DATA_DIR": str(tmp_path / "data"), "TIME_BETWEEN_CHUNKS": "0"}
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "main:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-config",
        str(tmp_path / "log.json"),
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        await _wait_up(f"http://127.0.0.1:{port}", proc)
        seen = await _exercise(f"http://127.0.0.1:{port}")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    lines = [line for line in (out + err).splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    assert all({"ts", "level", "logger", "message"} <= set(e) for e in events)
    messages = " ".join(e["message"] for e in events)
    assert "Uvicorn running on" in messages and "Application startup complete" in messages
    access = [e for e in events if e.get("event") == "access"]
    assert access and all("?" not in e["path"] for e in access)
    chat = seen["chat"]
    (request,) = [e for e in events if e.get("event") == "request" and e.get("request_id") == "req-json-1"]
    assert request["route"] == "/chat" and request["status"] == 200 and request["duration_ms"] > 0
    assert request["session_id"] == chat["session_id"] and request["generation_id"] == chat["generation_id"]
    assert request["user_id"]
    (socket,) = [e for e in events if e.get("event") == "websocket"]
    assert socket["user_id"] == request["user_id"] and socket["route"] == "/ws/{session_id}"
    (end,) = [e for e in events if e.get("event") == "generation_end"]
    assert end["generation_id"] == chat["generation_id"] and end["session_id"] == chat["session_id"]
    assert end["user_id"] == request["user_id"] and end["status"] == "completed" and end["finish_reason"] == "stop"
    assert end["completion_tokens"] == chat["usage"]["completion_tokens"] and end["duration_ms"] >= end["ttft_ms"] >= 0
    everything = out + err
    for secret in (PASSWORD, seen["token"], MESSAGE):
        assert secret not in everything
