"""Helpers for the scale-out tests: real PostgreSQL, Redis and RabbitMQ on this machine
(override with TEST_POSTGRES_URL, TEST_REDIS_URL, TEST_RABBITMQ_URL), a unique namespace per
run (database, Redis key prefix, queue), and subprocesses for replicas and workers."""

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
SECRET = "scaleout-test-secret-key-0123456789-abcdefghij"


def unique(tag: str) -> str:
    return f"{tag}_{uuid.uuid4().hex[:10]}"


async def new_chat(services, model: str):
    """A fresh user and a chat session of theirs on `model`, straight in the database (for
    tests that drive the services without the HTTP API)."""
    from models.db import ChatSession, User

    async with services.db.sessionmaker() as db:
        user = User(username=unique("u"), password_hash="x")
        db.add(user)
        await db.flush()
        chat = ChatSession(
            user_id=user.id, model_name=model, temperature=1.0, max_tokens=1024, top_p=1.0, fallback_models=[]
        )
        db.add(chat)
        await db.commit()
        return chat


def _pg_admin_url() -> str:
    return POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")


def _with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


async def create_database(name: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(_pg_admin_url())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _with_database(_pg_admin_url(), name)


async def drop_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_pg_admin_url())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def clean_redis(prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        for i in range(0, len(keys), 500):
            await client.delete(*keys[i : i + 500])
    finally:
        await client.aclose()


async def delete_queue(queue: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(RABBITMQ_URL)
    try:
        channel = await connection.channel()
        await channel.queue_delete(queue)
        await channel.exchange_delete(f"{queue}.cancel")
    except Exception:
        pass
    finally:
        await connection.close()


def run(coro):
    """Runs a coroutine from synchronous (module-scoped) fixtures."""
    return asyncio.run(coro)


class Namespace:
    """One test run's database, key prefix and queue, with the env the processes need."""

    def __init__(self, tag: str = "scaleout"):
        self.db_name = unique(f"t_{tag}").lower()
        self.prefix = unique(tag) + ":"
        self.queue = unique(f"{tag}.jobs")
        self.database_url: str | None = None

    async def acreate(self) -> "Namespace":
        self.database_url = await create_database(self.db_name)
        return self

    async def adestroy(self) -> None:
        await clean_redis(self.prefix)
        await delete_queue(self.queue)
        await drop_database(self.db_name)

    def setup(self) -> "Namespace":
        return run(self.acreate())

    def teardown(self) -> None:
        run(self.adestroy())

    def env(self, **extra) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "OLLAMA_"))}
        env.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=REDIS_URL,
            RABBITMQ_URL=RABBITMQ_URL,
            REDIS_KEY_PREFIX=self.prefix,
            RABBITMQ_QUEUE=self.queue,
            SECRET_KEY=SECRET,
            PYTHONUNBUFFERED="1",
        )
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def settings(self, tmp_path, **overrides):
        from tests.support import make_settings

        values = dict(
            database_url=self.database_url,
            redis_url=REDIS_URL,
            rabbitmq_url=RABBITMQ_URL,
            redis_key_prefix=self.prefix,
            rabbitmq_queue=self.queue,
            secret_key=SECRET,
        )
        values.update(overrides)
        return make_settings(tmp_path, **values)


class Proc:
    """A replica (`python -m serve`) or a worker (`python -m worker`) as a real subprocess."""

    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path, port: int | None = None):
        self.name, self.args, self.env, self.port = name, args, env, port
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.base = f"http://127.0.0.1:{port}" if port else None
        self.ws_base = f"ws://127.0.0.1:{port}" if port else None

    @classmethod
    def api(cls, name: str, port: int, env: dict, log_dir: Path) -> "Proc":
        return cls(
            name,
            [PYTHON, "-m", "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env,
            log_dir,
            port,
        )

    @classmethod
    def worker(cls, name: str, env: dict, log_dir: Path) -> "Proc":
        return cls(name, [PYTHON, "-m", "worker"], env, log_dir)

    def start(self) -> "Proc":
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.args, cwd=ROOT, env=self.env, stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    def wait_ready(self, timeout: float = 60) -> "Proc":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            if self.port:
                try:
                    if httpx.get(f"{self.base}/health", timeout=2).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
            elif b"consuming" in self.log_path.read_bytes():
                return self
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready in {timeout}s:\n{self.tail()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()
        return self.proc.returncode

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""
