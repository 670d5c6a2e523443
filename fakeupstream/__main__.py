"""``python -m fakeupstream``: serve the fake upstream until SIGINT/SIGTERM (options in fakeupstream/__init__.py)."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence

import fakeupstream
from fakeupstream.app import DEFAULT_MODELS
from fakeupstream.server import FakeUpstream


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m fakeupstream",
        description=fakeupstream.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
