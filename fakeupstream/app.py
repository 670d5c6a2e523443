"""The fake upstream's HTTP app (fakeupstream/__init__.py has the options, the endpoints and
how to run it): OpenAI chat completions and Anthropic Messages over Starlette, the behaviour
of each reply from fakeupstream/behaviour.py, its wire format from fakeupstream/wire.py, and
the stats tests read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from fakeupstream.behaviour import Behaviour, BehaviourError, Disconnected, Wait, split_model
from fakeupstream.wire import (
    Reply,
    anthropic_events,
    anthropic_message,
    error_body,
    models_body,
    openai_events,
    openai_message,
    prompt_tokens,
)

DEFAULT_MODELS = ("fake-model", "fake-model-2")
_POLL_S = 0.05  # how often long waits look for a departed client; users rely on noticing within ~200 ms


class _State:
    def __init__(self, models: Sequence[str], api_key: str | None) -> None:
        self.models = list(models)
        self.api_key = api_key
        self.closing = False
        self.reset()

    def reset(self) -> None:
        # A fresh dict rather than zeroed counters: streams still in flight keep booking into the old one, so
        # stragglers from one test cannot show up in the next one's stats.
        self.default: dict[str, Any] = {}
        self.failures: dict[Behaviour, int] = {}
        self.stats: dict[str, Any] = {
            "requests": 0,
            "active": 0,
            "completed": 0,
            "disconnected": 0,
            "last_request": None,
        }


class _TrackedStream(StreamingResponse):
    """SSE response that books itself as completed or disconnected, however it ends."""

    def __init__(self, events: AsyncIterator[bytes], state: _State) -> None:
        self._state = state
        self._stats = state.stats
        self._finished = False
        super().__init__(self._relay(events), media_type="text/event-stream", headers={"cache-control": "no-cache"})

    async def _relay(self, events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for event in events:
            if self._state.closing:
                raise Disconnected
            yield event
        # Only reached once the send of the last event has returned.
        self._finished = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._stats["active"] += 1
        try:
            await super().__call__(scope, receive, send)
        except (ClientDisconnect, Disconnected):
            # Ends the response cleanly when the fake is stopping (uvicorn would log a truncated one as an app
            # error); when the client has gone, uvicorn drops it.
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self._stats["active"] -= 1
            self._stats["completed" if self._finished else "disconnected"] += 1


def _waiter(request: Request, state: _State) -> Wait:
    async def wait(seconds: float | None) -> None:
        # Short pacing sleeps skip polling: a disconnect surfaces at the next send or through Starlette's listener.
        if seconds is not None and seconds <= _POLL_S:
            await asyncio.sleep(seconds)
            return
        deadline = None if seconds is None else time.monotonic() + seconds
        while deadline is None or (left := deadline - time.monotonic()) > 0:
            if state.closing or await request.is_disconnected():
                raise Disconnected
            await asyncio.sleep(_POLL_S if deadline is None else min(_POLL_S, left))

    return wait


def _error(anthropic: bool, status: int, message: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(anthropic, status, message), status)


def _authorized(request: Request, api_key: str | None, anthropic: bool) -> bool:
    if api_key is None:
        return True
    bearer = request.headers.get("authorization") == f"Bearer {api_key}"
    # Anthropic's API documents x-api-key, yet recent anthropic SDKs send the key as a bearer token.
    return bearer or (anthropic and request.headers.get("x-api-key") == api_key)


def _forced_status(state: _State, behaviour: Behaviour) -> int | None:
    if behaviour.fail_times is None:
        return behaviour.status or None  # status=0 reads as "no forced status"
    failed = state.failures.get(behaviour, 0)
    if failed >= behaviour.fail_times:
        return None
    state.failures[behaviour] = failed + 1
    return behaviour.status or 503


async def _reply(request: Request, anthropic: bool) -> Response:
    state: _State = request.app.state.fake
    state.stats["requests"] += 1
    try:
        body = await request.json()
    except ValueError:
        body = None
    state.stats["last_request"] = body
    if not _authorized(request, state.api_key, anthropic):
        return _error(anthropic, 401)
    if not isinstance(body, dict):
        return _error(anthropic, 400, "fake upstream: the body must be a JSON object")
    try:
        model, options = split_model(str(body.get("model", "")))
        behaviour = Behaviour.parse({**state.default, **options})
    except BehaviourError as exc:
        return _error(anthropic, 400, f"fake upstream: {exc}")
    if (status := _forced_status(state, behaviour)) is not None:
        return _error(anthropic, status)
    max_tokens = body.get("max_tokens")
    if not anthropic:
        max_tokens = body.get("max_completion_tokens") or max_tokens
    if not isinstance(max_tokens, int) or max_tokens < 0:
        max_tokens = None  # validating requests is the real API's job, not the fake's
    tokens, finish = behaviour.plan(max_tokens)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    r = Reply(behaviour, tokens, finish, _waiter(request, state), model, prompt_tokens(body), include_usage)
    if body.get("stream"):
        return _TrackedStream((anthropic_events if anthropic else openai_events)(r), state)
    return await _whole_reply(r, state.stats, anthropic, endless=behaviour.endless(max_tokens))


async def _whole_reply(r: Reply, stats: dict[str, Any], anthropic: bool, endless: bool) -> Response:
    stats["active"] += 1
    try:
        if endless:
            await r.wait(None)  # a looping model never completes a whole reply: hang until the client gives up
        pieces = [token async for token in r.behaviour.pace(r.tokens, r.wait)]
    except Disconnected:
        stats["disconnected"] += 1
        return Response(status_code=499)  # nginx's "client closed request"
    finally:
        stats["active"] -= 1
    stats["completed"] += 1
    if r.finish == "error":
        return _error(anthropic, 500, f"fake upstream error after {len(pieces)} tokens")
    return JSONResponse((anthropic_message if anthropic else openai_message)(r, "".join(pieces), len(pieces)))


async def _chat_completions(request: Request) -> Response:
    return await _reply(request, anthropic=False)


async def _messages(request: Request) -> Response:
    return await _reply(request, anthropic=True)


async def _models(request: Request) -> Response:
    state: _State = request.app.state.fake
    anthropic = "anthropic-version" in request.headers
    if not _authorized(request, state.api_key, anthropic):
        return _error(anthropic, 401)
    return JSONResponse(models_body(anthropic, state.models))


async def _stats(request: Request) -> Response:
    return JSONResponse(request.app.state.fake.stats)


async def _set_behaviour(request: Request) -> Response:
    try:
        options = await request.json()
        if not isinstance(options, dict):
            raise BehaviourError("expected a JSON object of behaviour options")
        Behaviour.parse(options)
    except (ValueError, BehaviourError) as exc:  # BehaviourError is a ValueError, as is bad JSON
        return JSONResponse({"error": str(exc)}, 400)
    request.app.state.fake.default = options
    return JSONResponse({"behaviour": options})


async def _reset(request: Request) -> Response:
    request.app.state.fake.reset()
    return JSONResponse({"reset": True})


def create_app(models: Sequence[str] | None = None, api_key: str | None = None) -> Starlette:
    app = Starlette(
        routes=[
            Route("/v1/models", _models),
            Route("/v1/chat/completions", _chat_completions, methods=["POST"]),
            Route("/v1/messages", _messages, methods=["POST"]),
            Route("/_fake/stats", _stats),
            Route("/_fake/behaviour", _set_behaviour, methods=["POST"]),
            Route("/_fake/reset", _reset, methods=["POST"]),
        ]
    )
    app.state.fake = _State(models or DEFAULT_MODELS, api_key)
    return app
