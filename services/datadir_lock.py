"""One embedded process per data directory.

The embedded mode keeps its live generations in the memory of the process that runs them,
and every process ends, at start-up, the generations it finds `running`: a second process on
the same data directory (a second run.sh, or `uvicorn --workers N`) would end the first
one's live answers and split their readers between two memories. So the embedded process
holds an exclusive lock (`fcntl.flock`) on `DATA_DIR/.lock` for its whole life, and a second
one refuses to start, saying how to scale instead: the scale-out mode."""

import fcntl
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
HOW_TO_SCALE = (
    "the embedded mode runs in one process per data directory; to serve from several "
    "processes use the scale-out mode (DATABASE_URL, REDIS_URL and RABBITMQ_URL, API "
    "replicas plus `python -m worker`; see docs/architecture.md)"
)


class DataDirBusy(RuntimeError):
    """The data directory is another embedded process's, or several workers were asked for."""


def requested_workers(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """The worker processes uvicorn was asked for (`--workers N`, or WEB_CONCURRENCY, its
    default); a spawned worker sees its parent's command line."""
    argv = sys.argv if argv is None else argv
    env = os.environ if environ is None else environ
    value = env.get("WEB_CONCURRENCY")
    for i, arg in enumerate(argv):
        if arg == "--workers" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--workers="):
            value = arg.split("=", 1)[1]
    try:
        return max(1, int(value)) if value is not None else 1
    except ValueError:
        return 1


def stop_supervisor() -> None:
    """In a worker spawned by uvicorn's supervisor, ask the supervisor to stop: older
    uvicorn releases start a worker that failed its start-up again, forever."""
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid:
        os.kill(parent.pid, signal.SIGTERM)


class DataDirLock:
    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        workers = requested_workers()
        if workers > 1:
            refusal = self._refuse(f"{workers} workers were requested: {HOW_TO_SCALE}")
            stop_supervisor()
            raise refusal
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise self._refuse(f"{self.path.parent} is in use by process {holder}: {HOW_TO_SCALE}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def _refuse(self, why: str) -> DataDirBusy:
        message = f"refusing to start: {why}"
        log.error(message)
        return DataDirBusy(message)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None
