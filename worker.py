"""Worker process of the scale-out mode: `python -m worker`.

Reads the same settings as the API (DATABASE_URL, REDIS_URL, RABBITMQ_URL, provider keys,
...), consumes generation jobs and streams them into Redis. SIGTERM or SIGINT: graceful
stop (WORKER_SHUTDOWN_GRACE); a second signal ends running generations at once."""

import asyncio
import logging
import os
import signal

from config import get_settings
from services.observability import logs, metrics, tracing
from services.scaleout.worker import Worker

log = logging.getLogger("worker")


async def run() -> None:
    settings = get_settings()
    tracing.setup_from_env("llm-chat-worker", os.environ)
    worker = Worker(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            worker.hurry()
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    await worker.start()
    if settings.worker_metrics_port:  # each worker serves its own (docs/architecture.md)
        metrics.serve(settings.worker_metrics_port)
    await stop.wait()
    log.info("stopping: no new jobs; running generations get %ss", worker.s.worker_shutdown_grace)
    await worker.shutdown()


def main() -> None:
    settings = get_settings()
    logs.configure(settings.log_format, settings.log_level)
    asyncio.run(run())


if __name__ == "__main__":
    main()
