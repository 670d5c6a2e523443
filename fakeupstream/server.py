"""The fake upstream served by uvicorn on a background thread: in-process for tests, or by
``python -m fakeupstream``."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from types import TracebackType

import uvicorn

from fakeupstream.app import create_app


class FakeUpstream:
    """The fake served by uvicorn on a background thread (its own event loop), for tests and tools."""

    def __init__(
        self, models: Sequence[str] | None = None, api_key: str | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.app = create_app(models, api_key)
        self._address = (host, port)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        self.openai_base_url = ""

    def start(self) -> FakeUpstream:
        # Binding here rather than in uvicorn makes port 0 usable: the real port is known before serving starts.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(self._address)
        except OSError:
            sock.close()
            raise
        host, port = sock.getsockname()[:2]
        self.base_url = f"http://{host}:{port}"
        self.openai_base_url = f"{self.base_url}/v1"
        self.app.state.fake.closing = False
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self._server = server = uvicorn.Server(config)
        self._thread = threading.Thread(target=server.run, args=([sock],), name="fake-upstream", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"fake upstream failed to start on {self.base_url}")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        # Streams notice `closing` within a poll or an event and end themselves; anything slower is cancelled after
        # uvicorn's graceful timeout.
        self.app.state.fake.closing = True
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
