"""Chat sessions: the model config and history behind every chat."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from api.deps import DbDep, ServicesDep, UlidPath
from api.openapi import errors
from api.principal import CurrentUser
from models.db import ChatSession, Message
from models.schemas import (
    INT64_MAX,
    MessageOut,
    SessionConfig,
    SessionDetail,
    SessionOut,
    SessionPage,
    SessionPatch,
    SetLLM,
)
from services.tree import PathEntry, active_path

router = APIRouter(tags=["sessions"])


def session_out(chat: ChatSession) -> SessionOut:
    return SessionOut(
        session_id=chat.id,
        title=chat.title,
        config=SessionConfig(
            model_name=chat.model_name,
            temperature=chat.temperature,
            max_tokens=chat.max_tokens,
            top_p=chat.top_p,
            system_prompt=chat.system_prompt,
            fallback_models=chat.fallback_models or [],
        ),
        created_at=chat.created_at,
        updated_at=chat.updated_at,
    )


@router.post("/set-llm", status_code=201, response_model=SessionOut, responses=errors(429))
async def set_llm(body: SetLLM, user: CurrentUser, services: ServicesDep, db: DbDep) -> SessionOut:
    await services.limits.check_session_create(user.id)
    return session_out(await services.sessions.create(db, user.id, body))


@router.get("/sessions", response_model=SessionPage, responses=errors(422))
async def list_sessions(
    user: CurrentUser,
    services: ServicesDep,
    db: DbDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
    kind: Annotated[Literal["chat", "api"], Query(description="api: the sessions of OpenAI-compatible calls")] = "chat",
    q: Annotated[
        str | None,
        Query(max_length=2000, description="search titles and message text (SEARCH_MAX_QUERY_CHARS); chats only"),
    ] = None,
) -> SessionPage:
    hits, total = await services.sessions.page(db, user.id, limit, offset, kind, q)
    items = [
        session_out(h.chat).model_copy(update={"last_message_at": h.last_message_at, "snippet": h.snippet})
        for h in hits
    ]
    return SessionPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/sessions/{session_id}", response_model=SessionDetail)
async def get_session(session_id: UlidPath, user: CurrentUser, services: ServicesDep, db: DbDep) -> SessionDetail:
    """The active branch (services/tree.py), with the versions at each fork."""
    chat = await services.sessions.get(db, user.id, session_id.upper())
    path = active_path(await services.sessions.history(db, chat.id), chat.active_leaf_id)
    return SessionDetail(
        **session_out(chat).model_dump(),
        active_leaf_id=path[-1].message.id if path else None,
        history=[message_out(e, path[i + 1].message if i + 1 < len(path) else None) for i, e in enumerate(path)],
    )


def message_out(entry: PathEntry, child: Message | None) -> MessageOut:
    m = entry.message
    answer = m.role == "assistant"
    # A user message names the answer shown after it on this branch (its stored one may be
    # an older version).
    generation_id = child.id if not answer and child is not None and child.role == "assistant" else m.generation_id
    return MessageOut(
        id=m.id,
        role=m.role,
        content=m.content,
        status=m.status,
        created_at=m.created_at,
        generation_id=generation_id,
        finish_reason=m.finish_reason,
        error=m.error,
        model=m.model if answer else None,
        usage=m.usage if answer else None,
        finished_at=m.finished_at if answer else None,
        parent_id=m.parent_id,
        versions=entry.versions,
    )


@router.patch("/sessions/{session_id}", response_model=SessionOut)
async def patch_session(
    session_id: UlidPath, body: SessionPatch, user: CurrentUser, services: ServicesDep, db: DbDep
) -> SessionOut:
    return session_out(await services.sessions.update(db, user.id, session_id.upper(), body))


@router.delete("/sessions/{session_id}", status_code=204)
async def delete_session(session_id: UlidPath, user: CurrentUser, services: ServicesDep, db: DbDep) -> Response:
    chat = await services.sessions.get(db, user.id, session_id.upper())
    await db.close()  # cancel opens sessions of its own: never hold one while waiting for another
    # Newest first, so no queued answer starts while the ones before it are cancelled.
    for generation_id in reversed(await services.generations.active_in_session(chat.id)):
        await services.generations.cancel(generation_id, user.id)
    await services.sessions.delete(db, user.id, chat.id)
    return Response(status_code=204)
