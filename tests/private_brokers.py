"""A private redis-server and a private RabbitMQ node for one test, on free ports, with all
their files in a temporary directory, so a test can stop and restart them without touching
the shared servers the other tests (and other people's runs) use.

RabbitMQ is started with /usr/lib/rabbitmq/bin/rabbitmq-server (the Debian wrapper in
/usr/sbin switches to the rabbitmq user, who cannot write the test's directory), with its own
node name, AMQP and distribution ports, Mnesia and log directories, an empty config (the
machine's own config names port 5672) and no plugins (no management listener)."""

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from abc import ABC, abstractmethod
from pathlib import Path

from tests.support import free_port

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def available() -> str | None:
    """Why the private servers cannot run here, or None."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed"
    if not os.access(RABBITMQ_SERVER, os.X_OK):
        return f"{RABBITMQ_SERVER} is not installed"
    return None


class PrivateServer(ABC):
    """One server process; `stop` ends it (SIGTERM, so it shuts down as it would in
    production), `start` brings it back on the same port with the same files."""

    name = "server"

    def __init__(self, root: Path):
        self.dir = root / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_file = None

    @abstractmethod
    def command(self) -> list[str]:
        """The server's command line: each kind of server says its own."""

    def environment(self) -> dict:
        return dict(os.environ)

    def start(self, timeout: float = 90) -> float:
        """Starts it and waits until it accepts connections; returns the time it did."""
        self.log_file = open(self.dir / "process.log", "ab")
        self.proc = subprocess.Popen(
            self.command(),
            cwd=self.dir,
            env=self.environment(),
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not come up on {self.port}:\n{self.tail()}")
            time.sleep(0.05)
        return time.monotonic()

    def stop(self, timeout: float = 60) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        deadline = time.monotonic() + timeout
        while port_open(self.port) and time.monotonic() < deadline:  # children (beam) gone too
            time.sleep(0.05)
        self.log_file.close()
        self.proc = None

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join((self.dir / "process.log").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class PrivateRedis(PrivateServer):
    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        # An append-only file, so a restart keeps the stream logs like a production Redis does.
        return [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.dir),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--protected-mode",
            "no",
        ]


class PrivateRabbit(PrivateServer):
    name = "rabbitmq"

    def __init__(self, root: Path):
        super().__init__(root)
        self.dist_port = free_port()
        self.node = f"test-{uuid.uuid4().hex[:10]}@localhost"
        (self.dir / "home").mkdir(exist_ok=True)
        for empty in ("rabbitmq.conf", "rabbitmq-env.conf"):
            (self.dir / empty).write_text("")
        (self.dir / "enabled_plugins").write_text("[].\n")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def command(self) -> list[str]:
        return [RABBITMQ_SERVER]

    def environment(self) -> dict:
        env = dict(os.environ)
        d = self.dir
        env.update(
            HOME=str(d / "home"),
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(d / "mnesia"),
            RABBITMQ_LOG_BASE=str(d / "log"),
            RABBITMQ_CONFIG_FILE=str(d / "rabbitmq"),
            RABBITMQ_CONF_ENV_FILE=str(d / "rabbitmq-env.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(d / "enabled_plugins"),
            ERL_EPMD_ADDRESS="127.0.0.1",
        )
        return env
