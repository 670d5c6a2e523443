"""POST /chat: synchronous, streamed (SSE) or background, one route for all three."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.deps import ServicesDep
from api.openapi import errors, sse
from api.principal import TokenSubject
from api.sse import sse_response
from models.schemas import ChatIn, ChatOut, SetLLM
from services.container import Services
from services.errors import NotFound
from services.generations.service import Accepted
from services.streaming.frames import encode, sse_plain
from services.users import get_user

router = APIRouter(tags=["chat"])


@router.post(
    "/chat",
    response_model=ChatOut,
    responses={
        **sse("the answer; stream: true or Accept: text/event-stream — SSE frames"),
        202: {"description": "background: true — queued; follow GET /stream/{generation_id}"},
        **errors(404, 429),
    },
)
async def chat(body: ChatIn, request: Request, user_id: TokenSubject, services: ServicesDep) -> Response:
    services.sessions.check_message(body.message)
    await services.usage.admit(user_id)  # disabled, or over a token budget: refused before storing
    streaming = not body.background and (body.stream or "text/event-stream" in request.headers.get("accept", ""))
    # Limits first: a refused request stores nothing. Into an existing session the count
    # runs in the transaction that stores the message (refused, it stores nothing either).
    if body.session_id is None:
        await services.limits.check_generation_start(user_id, None)
    lease = await services.limits.open_stream(user_id) if streaming else None
    try:
        accepted = await _submit(body, user_id, services)
    except BaseException:
        if lease is not None:
            await lease.release()
        raise
    headers = {"X-Session-ID": accepted.session_id, "X-Generation-ID": accepted.generation_id}

    if body.background:
        return JSONResponse(
            {
                "session_id": accepted.session_id,
                "generation_id": accepted.generation_id,
                "status": "queued",
                "position": accepted.position,
            },
            status_code=202,
            headers=headers,
        )
    if streaming:
        prelude = []
        if body.session_id is None:
            prelude.append(sse_plain("session", encode({"type": "session", "session_id": accepted.session_id})))
        prelude.append(sse_plain("accepted", accepted.frame()))
        return sse_response(services.generations, accepted.generation_id, 0, prelude, headers, lease)

    await services.generations.wait_done(accepted.generation_id)
    row = await services.generations.get(accepted.generation_id)
    out = ChatOut(
        session_id=accepted.session_id,
        generation_id=row.id,
        response=row.content,
        status=row.status,
        finish_reason=row.finish_reason,
        usage=row.usage,
        model=row.model,
        error=row.error,
    )
    return JSONResponse(out.model_dump(), headers=headers)


async def _submit(body: ChatIn, user_id: str, services: Services) -> Accepted:
    if body.session_id is None:
        user = await get_user(services.db, user_id)
        await services.limits.check_session_create(user.id)
        # An ORM session only for this, closed before submit: a handler holding a pooled
        # connection while waiting for another deadlocks the pool under load.
        async with services.db.sessionmaker() as db:
            chat_session = await services.sessions.create(db, user.id, SetLLM())
        return await services.generations.submit(chat_session, body.message, body.client_msg_id)
    check = await services.limits.generation_start_check(user_id, body.session_id.upper())
    try:  # no lookup first: the send checks the owner (the row exists only while its owner does)
        return await services.generations.submit_owned(
            user_id, body.session_id, body.message, body.client_msg_id, check
        )
    except NotFound:
        await get_user(services.db, user_id)  # a deleted user's token is 401, not 404
        raise
