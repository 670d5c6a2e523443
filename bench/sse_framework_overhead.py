"""Per-event cost: sse-starlette's EventSourceResponse vs a StreamingResponse of pre-encoded
bytes, both driven through the ASGI interface with a no-op send (measures the framework's
own per-event work, not the network). This decided api/sse.py's design.

sse-starlette is not a dependency of the service; run this in a throwaway venv:
    python3 -m venv /tmp/ssevenv && /tmp/ssevenv/bin/pip install sse-starlette
    /tmp/ssevenv/bin/python bench/sse_framework_overhead.py
Measured 2026-11-22 on the 2-core dev machine: 0.7-0.8 us/event lean vs 9.4-11.0 us/event
with sse-starlette 3.7.0 (x13 on the framework's share; on the full path through uvicorn
and the socket the difference is the same ~9 us per token)."""

import asyncio
import json
import time

from sse_starlette.sse import EventSourceResponse, ServerSentEvent
from starlette.responses import StreamingResponse

N = 100_000
payload = [
    json.dumps({"type": "chunk", "generation_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "seq": i, "chunk": "tok "})
    for i in range(N)
]


async def lean():
    for i, d in enumerate(payload):
        yield f"id: {i}\nevent: chunk\ndata: {d}\n\n".encode()


async def ssestar():
    for i, d in enumerate(payload):
        yield ServerSentEvent(data=d, id=str(i), event="chunk")


async def run(resp):
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "path": "/",
        "headers": [],
        "extensions": {},
    }

    async def receive():
        await asyncio.sleep(3600)

    async def send(msg):
        pass

    t = time.process_time()
    await resp(scope, receive, send)
    return (time.process_time() - t) / N * 1e6


async def main():
    for _ in range(2):
        a = await run(StreamingResponse(lean(), media_type="text/event-stream"))
        b = await run(EventSourceResponse(ssestar(), ping=15))
        print(f"lean StreamingResponse: {a:.2f} us/event   sse-starlette: {b:.2f} us/event   ratio {b / a:.2f}")


asyncio.run(main())
