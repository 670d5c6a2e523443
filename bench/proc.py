"""Processes of a benchmark run: the fake upstream, service instances and load generators,
each in its own process, pinned to a core where the machine has more than one; and the
figures read from /proc about them (CPU time, RSS)."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
SECRET = "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cores() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def raise_fd_limit(want: int = 20000) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(want, hard) if hard != resource.RLIM_INFINITY else want
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pin(pid: int, cpus: set[int] | None) -> None:
    """Pins a process (all its threads) to `cpus`; None leaves it on every core."""
    if not cpus:
        return
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(tid), cpus)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass


def family(pid: int) -> list[int]:
    """The process and its descendants (uvicorn --workers forks children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process from /proc/<pid>/stat (all its threads)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def tree_cpu_seconds(pid: int) -> float:
    return sum(cpu_seconds(p) for p in family(pid))


def rss_bytes(pid: int) -> int:
    """VmRSS from /proc/<pid>/status."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def tree_rss_bytes(pid: int) -> int:
    return sum(rss_bytes(p) for p in family(pid))


def loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def http_json(
    method: str, url: str, body=None, headers: dict | None = None, form: dict | None = None, timeout: float = 30
):
    data, hdrs = None, dict(headers or {})
    if form is not None:
        from urllib.parse import urlencode

        data = urlencode(form).encode()
        hdrs["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


@dataclass
class Proc:
    name: str
    cmd: list[str]
    env: dict
    log_path: Path
    cpus: set[int] | None = None
    proc: subprocess.Popen | None = None
    extra: dict = field(default_factory=dict)
    cwd: Path = ROOT

    def start(self) -> Proc:
        self.log = open(self.log_path, "wb")
        cpus = self.cpus
        # Pinned in the child before exec, so every thread it ever starts inherits the mask.
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=self.cwd,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def repin(self) -> None:
        for p in family(self.pid):
            pin(p, self.cpus)

    def cpu(self) -> float:
        return tree_cpu_seconds(self.pid)

    def rss(self) -> int:
        return tree_rss_bytes(self.pid)

    def stop(self) -> None:
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()

    def kill(self) -> None:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.log.close()

    def restart(self, cpus_after: set[int] | None = None) -> None:
        """SIGKILL and start again, same command, port and data (the service's crash recovery
        ends what was running); unpinned while it starts, pinned once healthy."""
        self.kill()
        self.log_path = self.log_path.with_suffix(".restarted.log")
        pinned, self.cpus = self.cpus, None
        self.start()
        self.cpus = pinned
        wait_healthy(self, self.extra["base"])
        self.repin()

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""


def start_fake(work: Path, cpus: set[int] | None, models: list[str]) -> tuple[Proc, str]:
    fake = Proc(
        "fake",
        [PYTHON, "-m", "fakeupstream", "--port", "0", "--models", ",".join(models)],
        {**os.environ, "PYTHONUNBUFFERED": "1"},
        work / "fake.log",
        cpus,
    ).start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = fake.log_path.read_text()
        if "listening on" in text:
            fake.repin()
            return fake, text.split("listening on", 1)[1].split()[0]
        if not fake.alive():
            break
        time.sleep(0.05)
    raise RuntimeError(f"fake upstream did not start:\n{fake.tail()}")


# A benchmark's one user stands for many clients: the per-user limits, which a person never
# meets, would refuse the load itself.
LOAD_LIMITS = {
    "USER_REQUESTS_PER_MINUTE": "1000000",
    "USER_MAX_OPEN_STREAMS": "100000",
    "USER_MAX_RUNNING_GENERATIONS": "10000",
    "USER_MAX_QUEUED_GENERATIONS": "100000",
    "USER_SESSIONS_PER_HOUR": "1000000",
}


def start_service(
    name: str,
    work: Path,
    fake_url: str,
    cpus: set[int] | None,
    *,
    deflate: bool = False,
    workers: int = 1,
    env: dict | None = None,
    ws_impl: str | None = None,
    root: Path | None = None,
    app: str = "main:app",
) -> Proc:
    """`root`: run the service from another copy of the tree (a baseline to compare with);
    `app`: another ASGI app served the same way (the floor, bench.minimal_relay:app)."""
    port = free_port()
    data = work / f"data-{name}"
    data.mkdir(parents=True, exist_ok=True)
    service_env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "RABBITMQ_URL")},
        "OPENAI_BASE_URL": f"{fake_url}/v1",
        "OPENAI_API_KEY": "bench",
        "DEFAULT_MODEL": "openai/fake-model",
        "DATA_DIR": str(data),
        "SECRET_KEY": SECRET,
        "ALLOW_REGISTRATION": "true",
        "WS_MAX_CONNECTIONS_PER_USER": "100000",
        "WS_MAX_MESSAGES_PER_MINUTE": "100000",
        "LOGIN_MAX_FAILURES": "1000",
        "OLLAMA_PROBE_TIMEOUT": "0",
        # Every bench stream is a new chat, so an auto-title would add a second generation to
        # each one, where real chats have one per conversation: the relay is measured without
        # it (its cost per chat is in bench/README.md). AUTO_TITLE=true in the environment keeps it.
        "AUTO_TITLE": os.environ.get("AUTO_TITLE", "false"),
        "PYTHONUNBUFFERED": "1",
        **LOAD_LIMITS,
        **(env or {}),
    }
    python = str(Path(root) / ".venv" / "bin" / "python") if root else PYTHON
    cmd = [
        python,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        *serving_args(Path(root or ROOT)),
        "--ws-per-message-deflate",
        "true" if deflate else "false",
    ]
    if ws_impl:
        cmd += ["--ws", ws_impl]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    svc = Proc(name, cmd, service_env, work / f"service-{name}.log", cpus, cwd=Path(root or ROOT)).start()
    svc.extra.update(
        port=port,
        base=f"http://127.0.0.1:{port}",
        workers=workers,
        deflate=deflate,
        env=env or {},
        cmd=" ".join(cmd[1:]),
    )
    wait_healthy(svc, svc.extra["base"])
    svc.repin()
    return svc


def serving_args(tree: Path) -> list[str]:
    """uvicorn's options as the service's launchers pass them (api/serving.py's UVICORN_ARGS),
    so the service is measured as it runs; the deflate flag is the caller's. An older tree
    without api/serving.py (a baseline) ran with uvicorn's defaults."""
    if not (tree / "api" / "serving.py").exists():
        return []
    from api.serving import UVICORN_ARGS

    out, args = [], iter(UVICORN_ARGS)
    for arg in args:
        if arg == "--ws-per-message-deflate":
            next(args)
        else:
            out.append(arg)
    return out


def wait_healthy(svc: Proc, base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not svc.alive():
            raise RuntimeError(f"service {svc.name} exited during start-up:\n{svc.tail()}")
        try:
            status, _ = http_json("GET", f"{base}/health", timeout=2)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"service {svc.name} did not become healthy:\n{svc.tail()}")
