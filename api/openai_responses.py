"""/v1/responses: create (sync, streamed or background), retrieve (also as a stream resumed
after a sequence number), cancel, delete and the input items of a response."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response

from api.deps import ServicesDep
from api.openai_admit import admitted
from api.openai_sse import TranslatedSSE
from api.principal import CurrentUser, TokenSubject
from models.openai_schemas import ResponseIn
from services.container import Services
from services.limits import StreamLease
from services.openai import responses
from services.openai.response_stream import ResponseEvents
from services.openai.response_view import input_item, response_object

# Out of /openapi.json, which is the native contract: the /v1 contract is OpenAI's, checked
# with OpenAI's own SDKs, and its rules (the last message is the user's, refused features)
# are not a JSON schema (docs/openai-compatibility.md).
router = APIRouter(prefix="/v1", tags=["openai"], include_in_schema=False)
ResponseId = Annotated[str, Path(max_length=64)]


def _headers(stored: responses.Stored) -> dict[str, str]:
    return {"X-Generation-ID": stored.generation_id, "X-Session-ID": stored.chat.id}


def _stream(
    services: Services, stored: responses.Stored, after: int, lease: StreamLease | None = None
) -> TranslatedSSE:
    events = ResponseEvents(services, stored, after)
    return TranslatedSSE(
        services.generations,
        stored.generation_id,
        events.relay_from(),
        events.prelude(),
        events.translate,
        _headers(stored),
        lease,
    )


async def _view(services: Services, stored: responses.Stored) -> JSONResponse:
    content = await responses.content_now(services, stored)
    return JSONResponse(response_object(stored.row, stored.chat, content), headers=_headers(stored))


@router.post("/responses", responses={200: {"content": {"text/event-stream": {}}}})
async def create_response(body: ResponseIn, user_id: TokenSubject, services: ServicesDep) -> Response:
    """Runs to its end whether or not a client stays: `background` answers at once
    (status queued or in_progress), `stream` streams the events, otherwise the call waits."""
    stored, lease = await admitted(services, user_id, body.stream, lambda: responses.create(services, user_id, body))
    if body.stream:
        return _stream(services, stored, -1, lease)
    if not body.background:
        await services.generations.wait_done(stored.generation_id)
        stored = await responses.load_by_id(services, stored)
    return await _view(services, stored)


@router.get("/responses/{response_id}", responses={200: {"content": {"text/event-stream": {}}}})
async def get_response(
    response_id: ResponseId,
    user: CurrentUser,
    services: ServicesDep,
    stream: bool = False,
    starting_after: Annotated[int | None, Query(ge=0, le=10_000_000)] = None,
) -> Response:
    stored = await responses.load(services, user.id, response_id)
    if stream:
        lease = await services.limits.open_stream(user.id)
        return _stream(services, stored, -1 if starting_after is None else starting_after, lease)
    return await _view(services, stored)


@router.post("/responses/{response_id}/cancel")
async def cancel_response(response_id: ResponseId, user: CurrentUser, services: ServicesDep) -> JSONResponse:
    """Stops the generation and keeps its text; cancelling a finished one changes nothing."""
    return await _view(services, await responses.cancel(services, user.id, response_id))


@router.delete("/responses/{response_id}", response_model=None)
async def delete_response(response_id: ResponseId, user: CurrentUser, services: ServicesDep) -> dict[str, Any]:
    await responses.delete(services, user.id, response_id)
    return {"id": response_id, "object": "response", "deleted": True}


@router.get("/responses/{response_id}/input_items", response_model=None)
async def list_input_items(
    response_id: ResponseId,
    user: CurrentUser,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    stored = await responses.load(services, user.id, response_id)
    rows = await responses.input_items(services, stored, limit + 1, order, after)
    items = [input_item(m) for m in rows[:limit]]
    return {
        "object": "list",
        "data": items,
        "has_more": len(rows) > limit,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
    }
