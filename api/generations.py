"""Generations: state, SSE streams from any seq, and cancel."""

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from api.deps import ServicesDep, UlidPath
from api.openapi import errors, sse
from api.principal import CurrentUser
from api.sse import sse_response
from models.schemas import INT64_MAX, LAST_EVENT_ID_DIGITS, GenerationOut
from services.errors import InvalidInput, NotFound

router = APIRouter(tags=["generations"])

AfterQuery = Annotated[int | None, Query(ge=0, le=INT64_MAX, description="resume after this seq")]
LastEventId = Annotated[str | None, Header(alias="Last-Event-ID")]


def resume_point(after: int | None, last_event_id: str | None) -> int:
    # The header is checked even when `after` wins: a malformed one is refused, never ignored.
    resume = None
    if last_event_id:
        # ASCII digits only: str.isdigit() also accepts superscripts and other scripts' digits,
        # which int() then refuses or reads as a number the client never sent.
        # At most 18 digits: every such number is a valid int64, and the schema can say so.
        if not (last_event_id.isascii() and last_event_id.isdigit()) or len(last_event_id) > LAST_EVENT_ID_DIGITS:
            raise InvalidInput("Last-Event-ID must be a seq number", code="invalid_last_event_id")
        resume = int(last_event_id)
    if after is not None:
        return after
    return resume or 0


@router.get("/generations/{generation_id}", response_model=GenerationOut)
async def get_generation(generation_id: UlidPath, user: CurrentUser, services: ServicesDep) -> GenerationOut:
    generations = services.generations
    return GenerationOut(**await generations.describe(await generations.get(generation_id.upper(), user.id)))


@router.post("/generations/{generation_id}/cancel", response_model=GenerationOut)
async def cancel_generation(generation_id: UlidPath, user: CurrentUser, services: ServicesDep) -> GenerationOut:
    generations = services.generations
    return GenerationOut(**await generations.describe(await generations.cancel(generation_id.upper(), user.id)))


@router.get(
    "/generations/{generation_id}/events", responses={**sse("the frames after the resume point"), **errors(429)}
)
async def generation_events(
    generation_id: UlidPath,
    user: CurrentUser,
    services: ServicesDep,
    after: AfterQuery = None,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    row = await services.generations.get(generation_id.upper(), user.id)
    after = resume_point(after, last_event_id)
    return sse_response(
        services.generations,
        row.id,
        after,
        headers={"X-Generation-ID": row.id},
        lease=await services.limits.open_stream(user.id),
    )


@router.get("/stream/{stream_id}", responses={**sse("the frames after the resume point"), **errors(429)})
async def stream(
    stream_id: UlidPath,
    user: CurrentUser,
    services: ServicesDep,
    after: AfterQuery = None,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """A generation id, or a session id for that session's latest generation."""
    stream_id = stream_id.upper()
    try:
        row = await services.generations.get(stream_id, user.id)
    except NotFound:
        chat_session = await services.sessions.find(services.db, user.id, stream_id)  # the owner's, or 404
        row = await services.generations.latest_in_session(chat_session.id)
    after = resume_point(after, last_event_id)
    return sse_response(
        services.generations,
        row.id,
        after,
        headers={"X-Generation-ID": row.id, "X-Session-ID": row.session_id},
        lease=await services.limits.open_stream(user.id),
    )
