"""The floor of the benchmark: a bare relay with none of the service's guarantees.

Upstream OpenAI SSE -> parse -> re-frame -> WebSocket (`/ws/{any}`, one `message` frame) or
SSE (`POST /chat`), in the wire format of PROTOCOL.md (accepted, chunk..., done). No auth,
no database, no history, no resume: what any relay must spend per token and per generation,
so that every figure of the service has its floor beside it. A raw ASGI app over one shared
aiohttp session, served by uvicorn with the service's own flags (bench/proc.py).

    OPENAI_BASE_URL=http://127.0.0.1:PORT/v1 uvicorn bench.minimal_relay:app ..."""

import itertools
import json
import os

import aiohttp

_str = json.encoder.encode_basestring
_ids = itertools.count(1)
_http: aiohttp.ClientSession | None = None


async def _tokens(message: str):
    body = {
        "model": os.environ.get("FLOOR_MODEL", "fake-model"),
        "stream": True,
        "max_tokens": 131072,
        "messages": [{"role": "user", "content": message}],
    }
    headers = {"Authorization": f"Bearer {os.environ.get('OPENAI_API_KEY', 'bench')}"}
    async with _http.post(f"{os.environ['OPENAI_BASE_URL']}/chat/completions", json=body, headers=headers) as r:
        async for line in r.content:
            if not line.startswith(b"data: "):
                continue
            if line.startswith(b"data: [DONE]"):
                return
            for choice in json.loads(line[6:]).get("choices") or ():
                text = (choice.get("delta") or {}).get("content")
                if text:
                    yield text


async def _generation(message: str, emit) -> None:
    gen = f"floor-{next(_ids)}"
    await emit("accepted", 0, f'{{"type":"accepted","generation_id":"{gen}","position":0}}')
    seq = 0
    async for text in _tokens(message):
        seq += 1
        await emit("chunk", seq, f'{{"type":"chunk","generation_id":"{gen}","seq":{seq},"chunk":{_str(text)}}}')
    await emit(
        "done",
        seq + 1,
        f'{{"type":"done","generation_id":"{gen}","seq":{seq + 1},"status":"completed","finish_reason":"stop"}}',
    )


async def _websocket(receive, send) -> None:
    async def emit(_kind, _seq, data):
        await send({"type": "websocket.send", "text": data})

    while True:
        event = await receive()
        if event["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif event["type"] == "websocket.disconnect":
            return
        elif event.get("text"):
            frame = json.loads(event["text"])
            if frame.get("type") == "message":
                await _generation(frame.get("content", ""), emit)


async def _http_request(scope, receive, send) -> None:
    if scope["method"] == "GET" and scope["path"] == "/health":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        return await send({"type": "http.response.body", "body": b'{"status":"ok"}'})
    body, more = b"", True
    while more:
        event = await receive()
        body, more = body + event.get("body", b""), event.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-store")],
        }
    )

    async def emit(kind, seq, data):
        await send(
            {
                "type": "http.response.body",
                "body": f"id: {seq}\nevent: {kind}\ndata: {data}\n\n".encode(),
                "more_body": True,
            }
        )

    await _generation(json.loads(body or b"{}").get("message", ""), emit)
    await send({"type": "http.response.body", "body": b""})


async def app(scope, receive, send) -> None:
    global _http
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            _http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10), connector=aiohttp.TCPConnector(limit=0)
            )
            await send({"type": "lifespan.startup.complete"})
        await _http.close()
        return await send({"type": "lifespan.shutdown.complete"})
    if scope["type"] == "websocket":
        return await _websocket(receive, send)
    return await _http_request(scope, receive, send)
