"""Server-Sent Events over a lean StreamingResponse of pre-encoded bytes.

sse-starlette spends many times more framework time per event (bench/sse_framework_overhead.py;
the figures are in bench/README.md): it builds a ServerSentEvent and runs a task group per
stream. Here each event is one f-string over the frame's stored JSON (frames.sse_event), and
pings come from the follower's idle timeout, not a task.
A disconnect cancels only this reader: the generation runs on. When the server is going
away the stream ends with an error event, after the frames it had."""

from collections.abc import Sequence

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from services.generations.service import GenerationService
from services.limits import StreamLease
from services.observability import TRANSPORT
from services.streaming.frames import SSE_PING, Frame, encode, sse_event, sse_plain

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_GOING_AWAY = sse_plain(
    "error",
    encode(
        {
            "type": "error",
            "code": "server_shutdown",
            "message": "The server is restarting; reconnect with Last-Event-ID to continue.",
        }
    ),
)


class LeasedStream(StreamingResponse):
    """A StreamingResponse (its disconnect handling included) holding the user's
    open-stream slot, if any, until it ends."""

    lease: StreamLease | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.lease is not None:
                await self.lease.release()


class _SSEResponse(LeasedStream):
    """Its body is the relay's frames, sent straight down `send` from the response's task as
    batches, with no body iterator in between."""

    def __init__(
        self,
        generations: GenerationService,
        generation_id: str,
        after: int,
        prelude: list[bytes],
        headers: dict[str, str],
        lease: StreamLease | None = None,
    ):
        super().__init__((), media_type="text/event-stream", headers=headers)
        self.relay_args = generations, generation_id, after, prelude
        self.lease = lease

    async def stream_response(self, send: Send) -> None:
        generations, generation_id, after, prelude = self.relay_args
        TRANSPORT.set("sse")  # this reader's label in the metrics
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})

        async def body(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        async def events(batch: Sequence[Frame]) -> None:  # the frames one wake found: one send down the ASGI stack
            await body(sse_event(batch[0]) if len(batch) == 1 else b"".join(map(sse_event, batch)))

        for item in prelude:
            await body(item)
        async with generations.readers.reading(generation_id):
            if not await generations.relay(generation_id, after, events, ping=lambda: body(SSE_PING)):
                if generations.closing.is_set():
                    await body(_GOING_AWAY)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def sse_response(
    generations: GenerationService,
    generation_id: str,
    after: int,
    prelude: list[bytes] | None = None,
    headers: dict[str, str] | None = None,
    lease: StreamLease | None = None,
) -> StreamingResponse:
    return _SSEResponse(generations, generation_id, after, prelude or [], {**SSE_HEADERS, **(headers or {})}, lease)
