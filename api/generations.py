"""Generations: state, SSE streams from any seq, and cancel."""

from typing import Annotated

from fastapi import APIRouter, Header, Query

from api.deps import UlidPath, ServicesDep
from api.principal import CurrentUser
from api.openapi import errors, sse
from api.sse import sse_response
from models.db import Message
from models.schemas import INT64_MAX, LAST_EVENT_ID_DIGITS, GenerationOut
from services.container import Services
from services.errors import InvalidInput, NotFound
from services.generations.service import generation_view

router = APIRouter(tags=["generations"])

AfterQuery = Annotated[int | None, Query(ge=0, le=INT64_MAX, description="resume after this seq")]
LastEventId = Annotated[str | None, Header(alias="Last-Event-ID")]


async def describe(services: Services, row: Message) -> GenerationOut:
    view = generation_view(row)
    if row.status in ("queued", "running"):  # the log is ahead of the last flush
        snap = await services.log.snapshot(row.id)
        if snap is not None and snap[1] >= row.last_seq:
            view["content"], view["last_seq"] = snap
    return GenerationOut(**view)


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
async def get_generation(generation_id: UlidPath, user: CurrentUser, services: ServicesDep):
    return await describe(services, await services.store.get(generation_id.upper(), user.id))


@router.post("/generations/{generation_id}/cancel", response_model=GenerationOut)
async def cancel_generation(generation_id: UlidPath, user: CurrentUser, services: ServicesDep):
    return await describe(services, await services.generations.cancel(generation_id.upper(), user.id))


@router.get("/generations/{generation_id}/events", responses={**sse("the frames after the resume point"), **errors(429)})
async def generation_events(generation_id: UlidPath, user: CurrentUser, services: ServicesDep,
                            after: AfterQuery = None, last_event_id: LastEventId = None):
    row = await services.store.get(generation_id.upper(), user.id)
    after = resume_point(after, last_event_id)
    return sse_response(services.generations, row.id, after, headers={"X-Generation-ID": row.id},
                        lease=await services.limits.open_stream(user.id))


@router.get("/stream/{stream_id}", responses={**sse("the frames after the resume point"), **errors(429)})
async def stream(stream_id: UlidPath, user: CurrentUser, services: ServicesDep,
                 after: AfterQuery = None, last_event_id: LastEventId = None):
    """A generation id, or a session id for that session's latest generation."""
    stream_id = stream_id.upper()
    try:
        row = await services.store.get(stream_id, user.id)
    except NotFound:
        async with services.db.sessionmaker() as db:  # closed before streaming starts
            chat_session = await services.sessions.get(db, user.id, stream_id)
        row = await services.store.latest(chat_session.id)
        if row is None:
            raise NotFound(f"session {stream_id} has no generation yet", code="generation_not_found")
    after = resume_point(after, last_event_id)
    return sse_response(services.generations, row.id, after,
                        headers={"X-Generation-ID": row.id, "X-Session-ID": row.session_id},
                        lease=await services.limits.open_stream(user.id))
