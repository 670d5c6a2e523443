"""How the OpenAI-compatible provider reads a streamed body, over real HTTP from a raw
upstream on 127.0.0.1 whose bytes each test chooses: events split anywhere across
reads, CRLF lines, comments, a compressed body, a last line without its newline, and a
malformed chunk; on both PROVIDER_HTTP_TRANSPORTs. And the aiohttp transport's keep-alive:
a stream that ends at [DONE] before its body does leaves its connection to the next."""

import asyncio
import gzip
import itertools
import json

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route

from services.errors import ProviderError
from services.providers.base import ChatRequest, Finish, Usage
from services.providers.openai_compat import OpenAICompatProvider
from tests.support import free_port

TRANSPORTS = ["aiohttp", "httpx"]


def _chunk(text: str | None = None, finish: str | None = None, usage: dict | None = None) -> bytes:
    body = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [] if usage else [{"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}],
    }
    if usage:
        body["usage"] = usage
    return b"data: " + json.dumps(body).encode()


class RawUpstream:
    """Serves `pieces` (bytes written one at a time, with a pause between) as the body of
    every POST /v1/chat/completions."""

    def __init__(self):
        self.pieces: list[bytes] = []
        self.headers: dict[str, str] = {}
        self.clients: list[int] = []  # the client port of each request: one per connection

        async def completions(request):
            await request.body()
            self.clients.append(request.client.port)

            async def body():
                for piece in self.pieces:
                    yield piece
                    await asyncio.sleep(0.005)  # separate writes, so separate reads

            return StreamingResponse(body(), media_type="text/event-stream", headers=self.headers)

        self.app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"

    async def __aenter__(self):
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc):
        self.server.should_exit = True
        await self.task


@pytest.fixture
async def raw():
    async with RawUpstream() as upstream:
        yield upstream


async def _read(url: str, transport: str) -> list:
    provider = OpenAICompatProvider("openai", url, "sk-test", transport=transport)
    try:
        return [e async for e in provider.stream(ChatRequest("m", [{"role": "user", "content": "hi"}]))]
    finally:
        await provider.aclose()


def _body(*events: bytes, sep: bytes = b"\n\n") -> bytes:
    return b"".join(e + sep for e in events)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_events_split_anywhere_across_reads_arrive_whole_and_in_order(raw, transport):
    body = b": keep-alive comment\n\nevent: message\n" + _body(
        _chunk("Hel"),
        _chunk("lo, "),
        _chunk("wörld"),
        _chunk(finish="length"),
        _chunk(usage={"prompt_tokens": 3, "completion_tokens": 4}),
        b"data: [DONE]",
        sep=b"\r\n\r\n",
    )
    cuts = [0, 7, 8, 41, 42, 43, 90, 150, len(body) - 3, len(body)]  # mid-line, mid-JSON, mid-UTF-8
    raw.pieces = [body[a:b] for a, b in itertools.pairwise(cuts)]
    events = await _read(raw.url, transport)
    assert events == ["Hel", "lo, ", "wörld", Usage(3, 4), Finish("length")]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_compressed_stream_is_decoded(raw, transport):
    raw.headers = {"Content-Encoding": "gzip"}
    raw.pieces = [gzip.compress(_body(_chunk("one "), _chunk("two"), _chunk(finish="stop"), b"data: [DONE]"))]
    assert await _read(raw.url, transport) == ["one ", "two", Finish("stop")]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_last_data_line_without_its_newline_still_counts(raw, transport):
    raw.pieces = [_body(_chunk("a")), _chunk("b")]  # the server closes without "\n\n" or [DONE]
    assert await _read(raw.url, transport) == ["a", "b", Finish("stop")]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_malformed_chunk_fails_the_stream_with_a_stable_code(raw, transport):
    raw.pieces = [_body(_chunk("fine ")), b'data: {"choices": [{"delta": \n\n']
    provider = OpenAICompatProvider("openai", raw.url, "sk-test", transport=transport)
    got = []
    with pytest.raises(ProviderError) as err:
        async for event in provider.stream(ChatRequest("m", [{"role": "user", "content": "hi"}])):
            got.append(event)
    await provider.aclose()
    assert got == ["fine "]
    assert err.value.code == "upstream_error" and "malformed" in err.value.detail


async def test_a_stream_ended_by_done_gives_its_connection_to_the_next_request(raw):
    # The body's last bytes (the chunked terminator) come 5 ms after [DONE]: releasing the
    # response then would close the connection, and every answer would open a new one.
    raw.pieces = [_body(_chunk("a"), _chunk(finish="stop"), b"data: [DONE]")]
    provider = OpenAICompatProvider("openai", raw.url, "sk-test", transport="aiohttp")
    try:
        for _ in range(3):
            events = [e async for e in provider.stream(ChatRequest("m", [{"role": "user", "content": "hi"}]))]
            assert events == ["a", Finish("stop")]  # at [DONE], not after the body's tail
            await asyncio.gather(*provider.http._draining)  # the tail, read in the background
    finally:
        await provider.aclose()
    assert len(raw.clients) == 3 and len(set(raw.clients)) == 1, raw.clients


async def test_a_cancelled_stream_closes_its_connection(raw):
    raw.pieces = [_body(_chunk("a")), _body(_chunk("b")), _body(_chunk(finish="stop"), b"data: [DONE]")]
    provider = OpenAICompatProvider("openai", raw.url, "sk-test", transport="aiohttp")
    try:
        for _ in range(2):
            stream = provider.stream(ChatRequest("m", [{"role": "user", "content": "hi"}]))
            assert await anext(stream) == "a"
            await stream.aclose()  # the runner's stop or cancel: the upstream must stop generating
    finally:
        await provider.aclose()
    assert len(set(raw.clients)) == 2, raw.clients
