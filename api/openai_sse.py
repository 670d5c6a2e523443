"""SSE for the OpenAI-compatible routes: a generation's frames relayed through a translator
that turns each batch into OpenAI's events (services/openai/*_stream.py), the same relay,
push and disconnect handling as the native SSE (api/sse.py). A client that goes away
cancels only this reader; the generation runs on."""

from collections.abc import Awaitable, Callable, Sequence

from starlette.types import Send

from api.sse import SSE_HEADERS, LeasedStream
from services.generations.service import GenerationService
from services.limits import StreamLease
from services.observability import TRANSPORT
from services.streaming.frames import SSE_PING, Frame

Translate = Callable[[list[Frame]], bytes | Awaitable[bytes]]


class TranslatedSSE(LeasedStream):
    def __init__(
        self,
        generations: GenerationService,
        generation_id: str,
        after: int,
        prelude: bytes,
        translate: Translate,
        headers: dict[str, str] | None = None,
        lease: StreamLease | None = None,
    ):
        super().__init__((), media_type="text/event-stream", headers={**SSE_HEADERS, **(headers or {})})
        self.relay_args = generations, generation_id, after, prelude, translate
        self.lease = lease

    async def stream_response(self, send: Send) -> None:
        generations, generation_id, after, prelude, translate = self.relay_args
        TRANSPORT.set("sse")  # this reader's label in the metrics
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})

        async def body(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        async def events(batch: Sequence[Frame]) -> None:
            # The relay's batches are lists; the translators (services/openai) are typed so.
            data = translate(batch if isinstance(batch, list) else list(batch))
            if not isinstance(data, bytes):
                data = await data
            if data:
                await body(data)

        if prelude:
            await body(prelude)
        if after is not None:
            async with generations.readers.reading(generation_id):
                await generations.relay(generation_id, after, events, ping=lambda: body(SSE_PING))
        await send({"type": "http.response.body", "body": b"", "more_body": False})
