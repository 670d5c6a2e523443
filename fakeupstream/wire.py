"""What the fake upstream writes: the OpenAI and Anthropic wire formats of a reply, streamed or whole, its
error bodies and model lists. Stream events are assembled from pre-encoded byte templates so a token costs
one small json.dumps, keeping benchmarks honest."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from fakeupstream.behaviour import Behaviour, Finish, Wait

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
    default, openai_type, code, anthropic_type = _ERRORS.get(
        status,
        (
            f"error {status}",
            "server_error" if server else "invalid_request_error",
            f"http_{status}",
            "api_error" if server else "invalid_request_error",
        ),
    )
    message = message or f"fake upstream: {default}"
    if anthropic:
        return {"type": "error", "error": {"type": anthropic_type, "message": message}}
    return {"error": {"message": message, "type": openai_type, "param": None, "code": code}}


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
        uuid.uuid4().hex.encode(),
        int(time.time()),
        _dumps(r.model),
    )
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
        error = {"message": f"fake upstream error after {count} tokens", "type": "server_error", "code": "fake_error"}
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
    message: dict[str, Any] = {
        "id": f"msg_{uuid.uuid4().hex}",
        "type": "message",
        "role": "assistant",
        "model": r.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": r.prompt_tokens, "output_tokens": 0},
    }
    yield _sse("message_start", {"type": "message_start", "message": message})
    block = {"type": "text", "text": ""}
    yield _sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block})
    # The real API sends pings; a client that chokes on them should fail here rather than in production.
    yield _sse("ping", {"type": "ping"})
    token_open = (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":'
    )
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
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": r.model,
        "usage": _openai_usage(r, count),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": r.finish}],
    }


def anthropic_message(r: Reply, text: str, count: int) -> dict[str, Any]:
    return {
        "id": f"msg_{uuid.uuid4().hex}",
        "type": "message",
        "role": "assistant",
        "model": r.model,
        "content": [{"type": "text", "text": text}],
        "stop_sequence": None,
        "stop_reason": "max_tokens" if r.finish == "length" else "end_turn",
        "usage": {"input_tokens": r.prompt_tokens, "output_tokens": count},
    }


def models_body(anthropic: bool, models: list[str]) -> dict[str, Any]:
    if not anthropic:
        return {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in models],
        }
    data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"} for m in models]
    return {
        "data": data,
        "has_more": False,
        "first_id": models[0] if models else None,
        "last_id": models[-1] if models else None,
    }
