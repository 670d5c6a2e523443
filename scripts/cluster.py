"""Runs the scale-out mode locally with one command, Procfile-style: N API replicas
(uvicorn on consecutive ports) and M workers (`python -m worker`), every output line
prefixed with its process name. Ctrl-C (or SIGTERM) stops them all gracefully; a second
Ctrl-C kills them.

    .venv/bin/python scripts/cluster.py                         # 2 replicas on :8000-8001, 2 workers
    .venv/bin/python scripts/cluster.py --api 3 --workers 4 --port 9000
    .venv/bin/python scripts/cluster.py --fake-upstream         # no API key: the fake LLM upstream
    .venv/bin/python scripts/cluster.py --create-db             # CREATE DATABASE first if missing

The processes get this environment plus, when unset, DATABASE_URL, REDIS_URL and RABBITMQ_URL
pointing at local PostgreSQL (database `chat`), Redis and RabbitMQ, and a SECRET_KEY shared by
the replicas (tokens from one are accepted by the others) kept in data/cluster_secret_key.
Settings also come from `.env`, as for a single process."""

import argparse
import asyncio
import os
import secrets
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable
DEFAULTS = {
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/chat",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/",
}
COLORS = ["36", "32", "35", "33", "34", "31", "96", "92"]


def shared_secret() -> str:
    path = ROOT / "data" / "cluster_secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip()


async def create_database(url: str) -> None:
    import asyncpg

    base, name = url.replace("postgresql+asyncpg://", "postgresql://").rsplit("/", 1)
    conn = await asyncpg.connect(base + "/postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")
    finally:
        await conn.close()


class Runner:
    def __init__(self):
        self.procs: list[tuple[str, asyncio.subprocess.Process]] = []
        self.width = 8

    async def start(self, name: str, args: list[str], env: dict, watch: str | None = None) -> asyncio.Future:
        """Starts a process; the returned future gets its first output line containing `watch`."""
        proc = await asyncio.create_subprocess_exec(
            *args,
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        color = COLORS[len(self.procs) % len(COLORS)]
        self.procs.append((name, proc))
        self.width = max(self.width, len(name))
        seen = asyncio.get_running_loop().create_future()
        asyncio.create_task(self._pump(name, color, proc, watch, seen))
        return seen

    async def _pump(self, name: str, color: str, proc, watch: str | None, seen: asyncio.Future) -> None:
        tty = sys.stdout.isatty()
        async for line in proc.stdout:
            if watch and not seen.done() and watch in line.decode(errors="replace"):
                seen.set_result(line.decode(errors="replace"))
            label = name.ljust(self.width)
            prefix = f"\033[{color}m{label} |\033[0m " if tty else f"{label} | "
            sys.stdout.write(prefix + line.decode(errors="replace"))
            sys.stdout.flush()
        code = await proc.wait()
        print(f"{name.ljust(self.width)} | exited with {code}", flush=True)

    def signal_all(self, sig: int) -> None:
        for _, proc in self.procs:
            if proc.returncode is None:
                try:
                    proc.send_signal(sig)
                except ProcessLookupError:
                    pass

    async def wait_all(self) -> None:
        await asyncio.gather(*(proc.wait() for _, proc in self.procs))


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api", type=int, default=2, help="API replicas (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="workers (default 2)")
    parser.add_argument("--port", type=int, default=8000, help="first replica's port (default 8000)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--fake-upstream", action="store_true", help="start the fake LLM upstream and use openai/fake-model"
    )
    parser.add_argument("--create-db", action="store_true", help="create DATABASE_URL's database if missing")
    args = parser.parse_args()

    env = dict(os.environ)
    for key, value in DEFAULTS.items():
        env.setdefault(key, value)
    env.setdefault("SECRET_KEY", shared_secret())
    env["PYTHONUNBUFFERED"] = "1"
    if args.create_db:
        await create_database(env["DATABASE_URL"])

    runner = Runner()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stopping.is_set():
            print("second signal: killing everything", flush=True)
            runner.signal_all(signal.SIGKILL)
        stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)

    if args.fake_upstream:
        listening = await runner.start("fake", [PYTHON, "-m", "fakeupstream", "--port", "0"], env, watch="listening on")
        line = await asyncio.wait_for(listening, 30)
        base = line.rsplit(" ", 1)[-1].strip()
        env.update(
            OPENAI_BASE_URL=f"{base}/v1",
            OPENAI_API_KEY=env.get("OPENAI_API_KEY", "not-needed"),
            DEFAULT_MODEL="openai/fake-model",
        )
    for i in range(args.api):
        port = args.port + i
        # as scripts/run.sh: the service's launcher (bounded request heads, graceful stop)
        await runner.start(f"api{i + 1}:{port}", [PYTHON, "-m", "serve", "--host", args.host, "--port", str(port)], env)
    for i in range(args.workers):
        await runner.start(f"worker{i + 1}", [PYTHON, "-m", "worker"], env)
    print(
        f"cluster: {args.api} replica(s) on {args.host}:{args.port}..{args.port + args.api - 1}, "
        f"{args.workers} worker(s); Ctrl-C stops them",
        flush=True,
    )

    done = asyncio.ensure_future(runner.wait_all())
    stop = asyncio.ensure_future(stopping.wait())
    await asyncio.wait({done, stop}, return_when=asyncio.FIRST_COMPLETED)
    runner.signal_all(signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(done), 40)
    except TimeoutError:
        runner.signal_all(signal.SIGKILL)
        await done
    await asyncio.sleep(0.1)  # let the pumps print the exit lines
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
