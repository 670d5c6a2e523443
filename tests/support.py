"""Test helpers: a real uvicorn server in the test's event loop, users, and a small
WebSocket client speaking PROTOCOL.md frames."""

import asyncio
import json
import os
import socket
from contextlib import asynccontextmanager

import httpx
import uvicorn
import websockets

from api.serving import uvicorn_options
from config import Settings
from main import create_app

PASSWORD = "correct-horse-battery"


def make_settings(tmp_path, **overrides) -> Settings:
    # auto_title off: many tests read the fake upstream's last request as an answer's prompt,
    # and a first answer's title request, made in the background, could come after it;
    # tests/test_titles.py turns it on.
    values = dict(
        data_dir=tmp_path / "data",
        time_between_chunks=0.0,
        secret_key=None,
        sse_ping_interval=15.0,
        flush_interval=0.2,
        auto_title=False,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)


def coverage_env() -> dict[str, str]:
    """What starts coverage in a child (scripts/test.sh), for a child given a clean environment."""
    return {k: v for k, v in os.environ.items() if k.startswith("COVERAGE_")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """The app under a real uvicorn on 127.0.0.1, served from the test's own loop."""

    def __init__(self, settings: Settings, **uvicorn_overrides):
        self.settings = settings
        self.app = create_app(settings)
        self.services = self.app.state.services
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_base = f"ws://127.0.0.1:{self.port}"
        options = {"log_level": "warning", **uvicorn_options(settings), **uvicorn_overrides}
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, **options)
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # older uvicorn; newer capture only on main
        self.task: asyncio.Task | None = None

    async def start(self) -> "Server":
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 10)

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.base, headers=headers, timeout=30)


async def eventually(fetch, ready, timeout: float = 10.0, every: float = 0.02):
    """Awaits `fetch()` until `ready(value)`, and returns that value: a wait on a condition,
    where a fixed sleep would race the timer it waits for. TimeoutError past `timeout`."""
    async with asyncio.timeout(timeout):
        while not ready(value := await fetch()):
            await asyncio.sleep(every)
    return value


async def register(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    r = await client.post("/users", json={"username": username, "password": password})
    assert r.status_code == 201, r.text
    r = await client.post("/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


async def new_session(client: httpx.AsyncClient, token: str, **config) -> str:
    r = await client.post("/set-llm", json=config, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    return r.json()["session_id"]


class WS:
    """A WebSocket client that keeps every frame, per generation."""

    def __init__(self, conn):
        self.conn = conn

    @classmethod
    @asynccontextmanager
    async def connect(cls, url: str, token: str | None, **kwargs):
        headers = {"Authorization": f"Bearer {token}"} if token else None
        async with websockets.connect(url, additional_headers=headers, max_size=None, **kwargs) as conn:
            yield cls(conn)

    async def send(self, obj) -> None:
        await self.conn.send(obj if isinstance(obj, str) else json.dumps(obj))

    async def recv(self, timeout: float = 10) -> dict:
        return json.loads(await asyncio.wait_for(self.conn.recv(), timeout))

    async def until_done(self, generation_id: str, timeout: float = 20) -> list[dict]:
        """Frames of one generation up to and including its done frame."""
        out = []
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv(timeout)
                if frame.get("generation_id") == generation_id:
                    out.append(frame)
                    if frame["type"] == "done":
                        return out


def text_of(frames: list[dict], base: str = "", after: int = 0) -> str:
    """Rebuilds the text the way a client must: snapshot replaces, chunks append, in seq order."""
    text, last = base, after
    for frame in frames:
        if frame["type"] == "snapshot":
            text, last = frame["content"], frame["seq"]
        elif frame["type"] == "chunk":
            assert frame["seq"] == last + 1, f"gap or repeat: {frame['seq']} after {last}"
            text += frame["chunk"]
            last = frame["seq"]
        elif frame["type"] == "done":
            assert frame["seq"] == last + 1, f"done seq {frame['seq']} after {last}"
    return text


async def read_sse(response: httpx.Response, limit: int | None = None) -> list[dict]:
    """Parses SSE events into dicts with their id and event type."""
    events, current = [], {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in current:
                data = json.loads(current["data"])
                data["_id"], data["_event"] = current.get("id"), current.get("event")
                events.append(data)
                if data.get("type") == "done" or (limit and len(events) >= limit):
                    return events
            current = {}
        elif line.startswith(":"):
            continue
        else:
            key, _, value = line.partition(":")
            current[key] = value[1:] if value.startswith(" ") else value
    return events


class ServerProcess:
    """`python -m serve` (the service's launcher) as a real child process, for signal and crash tests."""

    def __init__(self, env: dict, port: int | None = None, log_level: str = "warning", log_file=None):
        import os
        import sys

        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_base = f"ws://127.0.0.1:{self.port}"
        self.env = {**os.environ, **{k: str(v) for k, v in env.items()}}
        self.cmd = [
            sys.executable,
            "-m",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            log_level,
        ]
        self.log_file = log_file  # an open file for the server's stdout and stderr
        self.proc = None

    async def start(self) -> "ServerProcess":
        import subprocess
        from pathlib import Path

        root = Path(__file__).resolve().parent.parent
        self.proc = subprocess.Popen(self.cmd, cwd=root, env=self.env, stdout=self.log_file, stderr=self.log_file)
        async with asyncio.timeout(30):
            while True:
                try:
                    async with httpx.AsyncClient() as c:
                        if (await c.get(f"{self.base}/health")).status_code == 200:
                            return self
                except httpx.TransportError:
                    pass
                assert self.proc.poll() is None, "server exited during start-up"
                await asyncio.sleep(0.1)

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.base, headers=headers, timeout=30)

    def signal(self, sig) -> None:
        self.proc.send_signal(sig)

    async def wait_exit(self, timeout: float = 20) -> int:
        async with asyncio.timeout(timeout):
            while self.proc.poll() is None:
                await asyncio.sleep(0.05)
        return self.proc.returncode

    async def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                await self.wait_exit(20)
            except TimeoutError:
                self.proc.kill()


async def create_key(client: httpx.AsyncClient, token: str, name: str = "ci", **body) -> dict:
    """POST /api-keys as the token's user; the answer, with the one-time `key`."""
    r = await client.post("/api-keys", json={"name": name, **body}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    return r.json()


async def set_key_column(server, key_id: str, **values) -> None:
    """Writes columns of a stored API key directly (an expiry in the past, an old last use)."""
    from sqlalchemy import update

    from models.db import ApiKey

    stmt = update(ApiKey.__table__).where(ApiKey.__table__.c.id == key_id).values(**values)
    await server.services.db.run(lambda conn: conn.execute(stmt))
