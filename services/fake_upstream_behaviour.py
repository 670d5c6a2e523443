"""What the fake LLM upstream says and when: behaviour parsing, token plans, pacing and the wire formats.

The HTTP layer, and the documentation of the options, live in ``services.fake_upstream``. Stream events are
assembled from pre-encoded byte templates so a token costs one small json.dumps, keeping benchmarks honest.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import cycle, islice
from typing import Any, Literal
from urllib.parse import unquote

LOOP_PHRASE = "I am stuck in a loop. "
_TOKEN_RE = re.compile(r"\S+\s*|\s+")
# Unpaced streams would otherwise never give the event loop a turn while the socket buffer has room, starving
# other connections (e.g. /_fake/stats polled during a benchmark) and the disconnect listener.
_YIELD_EVERY = 64

Finish = Literal["stop", "length", "error"]
Wait = Callable[[float | None], Awaitable[None]]
"""Sleeps the given seconds (None: forever), raising Disconnected if the client goes away meanwhile."""


class BehaviourError(ValueError):
    """A behaviour option that cannot be understood."""


class Disconnected(Exception):
    """The client went away while the fake was waiting (or the fake is stopping, which ends replies alike)."""


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "tps": float, "ttft": float, "n": int, "stall_after": int, "stall": float, "loop": _flag,
    "error_after": int, "status": int, "fail_times": int, "slow_close": float, "text": str,
}

# status -> (message, OpenAI error type, OpenAI error code, Anthropic error type), mirroring the real APIs.
_ERRORS: dict[int, tuple[str, str, str, str]] = {
    400: ("bad request", "invalid_request_error", "bad_request", "invalid_request_error"),
    401: ("invalid api key", "invalid_request_error", "invalid_api_key", "authentication_error"),
    403: ("permission denied", "invalid_request_error", "permission_denied", "permission_error"),
    404: ("model not found", "invalid_request_error", "model_not_found", "not_found_error"),
    413: ("request too large", "invalid_request_error", "request_too_large", "request_too_large"),
    429: ("rate limited", "rate_limit_error", "rate_limit_exceeded", "rate_limit_error"),
    500: ("internal error", "server_error", "internal_error", "api_error"),
    502: ("bad gateway", "server_error", "bad_gateway", "api_error"),
    503: ("service unavailable", "server_error", "service_unavailable", "api_error"),
    504: ("gateway timeout", "server_error", "gateway_timeout", "api_error"),
    529: ("overloaded", "server_error", "overloaded", "overloaded_error"),
}


def error_body(anthropic: bool, status: int, message: str | None = None) -> dict[str, Any]:
    """The provider's error JSON for an HTTP status, with a distinctive default message."""
    server = status >= 500
    default, openai_type, code, anthropic_type = _ERRORS.get(status, (
        f"error {status}", "server_error" if server else "invalid_request_error", f"http_{status}",
        "api_error" if server else "invalid_request_error"))
    message = message or f"fake upstream: {default}"
    if anthropic:
        return {"type": "error", "error": {"type": anthropic_type, "message": message}}
    return {"error": {"message": message, "type": openai_type, "param": None, "code": code}}


def split_model(model: str) -> tuple[str, dict[str, str]]:
    """Split ``base@key=value,key=value`` into the base name and its (percent-decoded) options.
    `;` separates options too, so a name fits in a comma list such as OPENAI_MODELS, which is
    how the service offers it to /set-llm."""
    base, _, spec = model.partition("@")
    options: dict[str, str] = {}
    for item in filter(None, spec.replace(";", ",").split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise BehaviourError(f"expected key=value in model name, got {item!r}")
        options[key.strip()] = unquote(value)
    return base, options


def split_tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(text)


@dataclass(frozen=True)
class Behaviour:
    """One request's behaviour. Frozen so it can key the per-behaviour fail_times counters."""

    tps: float = 0.0
    ttft: float = 0.0
    n: int = 20
    stall_after: int | None = None
    stall: float | None = None
    loop: bool = False
    error_after: int | None = None
    status: int | None = None
    fail_times: int | None = None
    slow_close: float = 0.0
    text: str | None = None

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> Behaviour:
        """Build from strings (model-name syntax) or JSON values (POST /_fake/behaviour)."""
        kwargs: dict[str, Any] = {}
        for key, raw in options.items():
            convert = _CONVERTERS.get(key)
            if convert is None:
                raise BehaviourError(f"unknown behaviour option {key!r}")
            try:
                value = convert(raw)
            except (TypeError, ValueError):
                raise BehaviourError(f"bad value for {key}: {raw!r}") from None
            if isinstance(value, float | int) and value < 0:
                raise BehaviourError(f"{key} must not be negative")
            kwargs[key] = value
        return cls(**kwargs)

    def plan(self, max_tokens: int | None) -> tuple[Iterator[str], Finish]:
        """The tokens to send (endless for loop) and how the reply ends."""
        available: int | None
        if self.loop:
            source: Iterator[str] = cycle(split_tokens(LOOP_PHRASE))
            available = None
        elif self.text is not None:
            pieces = split_tokens(self.text)
            source, available = iter(pieces), len(pieces)
        else:
            source, available = (f"t{i} " for i in range(self.n)), self.n
        limits = [x for x in (available, max_tokens, self.error_after) if x is not None]  # none if endless
        count = min(limits) if limits else None
        finish: Finish = "stop"
        if self.error_after is not None and self.error_after == count:
            finish = "error"
        elif max_tokens is not None and max_tokens == count and (available is None or max_tokens < available):
            finish = "length"
        return (source if count is None else islice(source, count)), finish

    def endless(self, max_tokens: int | None) -> bool:
        return self.loop and max_tokens is None and self.error_after is None

    async def pace(self, tokens: Iterator[str], wait: Wait) -> AsyncIterator[str]:
        """Yield tokens on schedule: the first after ttft, then one every 1/tps, stalling once if asked."""
        clock = asyncio.get_running_loop().time
        # A stall without stall_after would otherwise never fire; stalling before the first token is the useful
        # reading.
        stall_at = self.stall_after if self.stall_after is not None else (0 if self.stall is not None else None)
        interval = 1 / self.tps if self.tps else 0.0
        if self.ttft:
            await wait(self.ttft)
        # Deadlines are absolute so the rate does not drift with the time spent sending each token.
        start = clock()
        emitted = 0
        for token in tokens:
            if emitted == stall_at:
                stalled = clock()
                await wait(self.stall)
                start += clock() - stalled
            if interval:
                delay = start + emitted * interval - clock()
                if delay > 0:
                    await wait(delay)
            elif emitted % _YIELD_EVERY == _YIELD_EVERY - 1:
                await asyncio.sleep(0)
            yield token
            emitted += 1
        if emitted == stall_at:
            await wait(self.stall)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass
class Reply:
    """Everything needed to write one reply, in either wire format."""

    behaviour: Behaviour
    tokens: Iterator[str]
    finish: Finish
    wait: Wait
    model: str
    prompt_tokens: int
    include_usage: bool = False


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, dict) and isinstance(value.get("text"), str):
        yield value["text"]


def prompt_tokens(body: dict[str, Any]) -> int:
    messages = [m.get("content") for m in body.get("messages") or [] if isinstance(m, dict)]
    return sum(len(text.split()) for text in _texts([body.get("system"), messages]))


def _openai_usage(r: Reply, count: int) -> dict[str, int]:
    return {"prompt_tokens": r.prompt_tokens, "completion_tokens": count, "total_tokens": r.prompt_tokens + count}


async def openai_events(r: Reply) -> AsyncIterator[bytes]:
    head = b'data: {"id":"chatcmpl-%s","object":"chat.completion.chunk","created":%d,"model":%s' % (
        uuid.uuid4().hex.encode(), int(time.time()), _dumps(r.model))
    opening = head + b',"choices":[{"index":0,"delta":'
    # Real OpenAI puts "usage":null on every chunk once usage is requested; parsers must cope with it.
    usage_null = b',"usage":null' if r.include_usage else b""

    def closing(finish_reason: bytes) -> bytes:
        return b',"logprobs":null,"finish_reason":' + finish_reason + b"}]" + usage_null + b"}\n\n"

    yield opening + b'{"role":"assistant","content":""}' + closing(b"null")
    token_open, token_close = opening + b'{"content":', b"}" + closing(b"null")
    count = 0
    async for token in r.behaviour.pace(r.tokens, r.wait):
        yield token_open + json.dumps(token).encode() + token_close
        count += 1
    if r.finish == "error":
        error = {"message": f"fake upstream error after {count} tokens", "type": "server_error",
                 "code": "fake_error"}
        yield b"data: " + _dumps({"error": error}) + b"\n\n"
        return
    yield opening + b"{}" + closing(b'"length"' if r.finish == "length" else b'"stop"')
    if r.include_usage:
        yield head + b',"choices":[],"usage":' + _dumps(_openai_usage(r, count)) + b"}\n\n"
    if r.behaviour.slow_close:
        await r.wait(r.behaviour.slow_close)
    yield b"data: [DONE]\n\n"


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + _dumps(data) + b"\n\n"


async def anthropic_events(r: Reply) -> AsyncIterator[bytes]:
    message = {
        "id": f"msg_{uuid.uuid4().hex}", "type": "message", "role": "assistant", "model": r.model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": r.prompt_tokens, "output_tokens": 0},
    }
    yield _sse("message_start", {"type": "message_start", "message": message})
    block = {"type": "text", "text": ""}
    yield _sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block})
    # The real API sends pings; a client that chokes on them should fail here rather than in production.
    yield _sse("ping", {"type": "ping"})
    token_open = (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
                  b'"delta":{"type":"text_delta","text":')
    count = 0
    async for token in r.behaviour.pace(r.tokens, r.wait):
        yield token_open + json.dumps(token).encode() + b"}}\n\n"
        count += 1
    if r.finish == "error":
        error = {"type": "api_error", "message": f"fake upstream error after {count} tokens"}
        yield _sse("error", {"type": "error", "error": error})
        return
    yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    delta = {"stop_reason": "max_tokens" if r.finish == "length" else "end_turn", "stop_sequence": None}
    yield _sse("message_delta", {"type": "message_delta", "delta": delta, "usage": {"output_tokens": count}})
    if r.behaviour.slow_close:
        await r.wait(r.behaviour.slow_close)
    yield _sse("message_stop", {"type": "message_stop"})


def openai_message(r: Reply, text: str, count: int) -> dict[str, Any]:
    message = {"role": "assistant", "content": text, "refusal": None}
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": r.model, "usage": _openai_usage(r, count),
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": r.finish}]}


def anthropic_message(r: Reply, text: str, count: int) -> dict[str, Any]:
    return {"id": f"msg_{uuid.uuid4().hex}", "type": "message", "role": "assistant", "model": r.model,
            "content": [{"type": "text", "text": text}], "stop_sequence": None,
            "stop_reason": "max_tokens" if r.finish == "length" else "end_turn",
            "usage": {"input_tokens": r.prompt_tokens, "output_tokens": count}}


def models_body(anthropic: bool, models: list[str]) -> dict[str, Any]:
    if not anthropic:
        return {"object": "list",
                "data": [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in models]}
    data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"} for m in models]
    return {"data": data, "has_more": False, "first_id": models[0] if models else None,
            "last_id": models[-1] if models else None}
