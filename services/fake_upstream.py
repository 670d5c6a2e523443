"""Fake LLM upstream: a real HTTP server speaking OpenAI chat-completions and Anthropic Messages, with the
behaviour (speed, stalls, loops, errors) chosen per request. For tests, benchmarks and working without an API key.

Behaviour options (all optional; comma-separated ``key=value`` in the model name, values percent-decoded):
    tps=50          tokens per second (0 or absent: as fast as possible)
    ttft=0.2        seconds before the first token (default 0)
    n=20            tokens to emit (default 20); token i is "t{i} ", so n=3 gives "t0 t1 t2 "
    text=Hi%2C you  reply with this text, split by r"\\S+\\s*|\\s+", instead of the generated tokens
    loop=1          repeat "I am stuck in a loop. " word by word until the client leaves (ignores n)
    stall_after=5   after 5 tokens, send nothing for `stall` seconds (no `stall`: until the client leaves)
    stall=2         the stall's length; without stall_after the stall comes before the first token
    error_after=5   after 5 tokens end the stream with an in-stream error event (non-stream: HTTP 500)
    status=429      answer this HTTP status at once, with a provider-shaped error body
    fail_times=2    answer `status` (default 503) to the first 2 requests with the same behaviour, then behave
    slow_close=1    streaming: wait this long before the final ``data: [DONE]`` / ``message_stop``
The request's max_tokens / max_completion_tokens caps the tokens (finish "length" / stop_reason "max_tokens").

Where the behaviour comes from, per option: the model name (``fake@tps=50,n=10``, whose base ``fake`` is echoed
as the model), else the runtime default set by ``POST /_fake/behaviour`` (a JSON object of options; ``{}`` resets).

Endpoints:
    GET  /v1/models            OpenAI list, or Anthropic's shape when the request has an anthropic-version header
    POST /v1/chat/completions  OpenAI chat completions, streamed (honours stream_options.include_usage) or not
    POST /v1/messages          Anthropic Messages, streamed (message_start .. message_stop, with one ping) or not
    GET  /_fake/stats          {requests, active, completed, disconnected, last_request} (non-streamed
                               replies count in active/completed/disconnected too)
    POST /_fake/behaviour      set the runtime default behaviour
    POST /_fake/reset          zero stats and fail_times counters, clear the default behaviour
With an api key configured, requests need ``Authorization: Bearer <key>`` (Anthropic routes: or ``x-api-key``).
Headers and the opening event (role chunk / message_start) go out at once; ttft delays the first token.

Running it:
    python -m services.fake_upstream [--host 127.0.0.1] [--port 8001] [--models a,b] [--api-key K]
        prints ``fake upstream listening on http://HOST:PORT`` (--port 0 picks a free port) and serves until
        SIGINT/SIGTERM.
    In-process: ``with FakeUpstream() as fake:`` then ``openai.OpenAI(base_url=fake.openai_base_url, ...)`` or
        ``anthropic.Anthropic(base_url=fake.base_url, ...)``; ``start()``/``stop()`` work too.
"""

from __future__ import annotations

import argparse
import signal
import socket
import threading
import time
from collections.abc import Sequence
from types import TracebackType

import uvicorn

from services.fake_upstream_app import DEFAULT_MODELS, create_app

__all__ = ["DEFAULT_MODELS", "FakeUpstream", "create_app", "main"]


class FakeUpstream:
    """The fake served by uvicorn on a background thread (its own event loop), for tests and tools."""

    def __init__(self, models: Sequence[str] | None = None, api_key: str | None = None,
                 host: str = "127.0.0.1", port: int = 0) -> None:
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

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.fake_upstream", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated model ids to list")
    parser.add_argument("--api-key", default=None, help="require this key (default: accept any)")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with FakeUpstream(models, args.api_key, args.host, args.port) as fake:
        print(f"fake upstream listening on {fake.base_url}", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
