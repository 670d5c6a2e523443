"""The Responses API over generations: a response is one generation in a session of kind
"api" of its own; `previous_response_id` copies that response's conversation (its input and
output, and what it continued) into the new session's history, so responses branch freely."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from models.db import ChatSession, Message
from models.openai_schemas import ResponseIn
from services.container import Services
from services.errors import Conflict, InvalidInput, NotFound
from services.generations.store_types import ACTIVE
from services.generations.store_types import GenerationRow as StoredRow
from services.json_types import JSONObject
from services.openai.conversation import conversation, generation_id_of, open_call, text_of, unsupported
from services.openai.response_view import RESPONSE_PREFIX, GenerationRow

REFUSED = ("tools", "tool_choice", "prompt", "conversation", "reasoning")


@dataclass(frozen=True)
class RowState:
    """A generation's row as known without reading it: just queued, or as its done frame says."""

    id: str
    session_id: str
    status: str
    content: str
    created_at: datetime
    model: str | None = None
    finish_reason: str | None = None
    usage: JSONObject | None = None
    error: JSONObject | None = None
    last_seq: int = 0


@dataclass(frozen=True)
class Stored:
    row: GenerationRow  # the generation's row, or what is known of it
    chat: ChatSession

    @property
    def generation_id(self) -> str:
        return self.row.id


@dataclass(frozen=True)
class Loaded(Stored):
    """A response read from the database: its row is the stored one."""

    row: StoredRow


def input_turns(body: ResponseIn) -> list[tuple[str, str]]:
    if isinstance(body.input, str):
        return [("user", body.input)]
    items: list[tuple[str, str]] = []
    for i, item in enumerate(body.input):
        if item.type != "message" or item.role is None:
            raise unsupported(f"input[{i}]: items of type {item.type!r}")
        items.append((item.role, text_of(item.content, f"input[{i}].content")))
    return items


async def create(services: Services, user_id: str, body: ResponseIn) -> Stored:
    extras = body.extras()
    for name in REFUSED:
        if extras.get(name):
            raise unsupported(f"{name}:")
    items = input_turns(body)
    prefix = None
    if body.previous_response_id:
        previous = await load(services, user_id, body.previous_response_id)
        if previous.row.status in ACTIVE:
            raise Conflict(f"response {body.previous_response_id} has not finished yet", code="response_in_progress")
        prefix = await history_through(services, previous.row)
    conv = conversation(services, items, body.instructions, prefix)
    options = {
        "api": "responses",
        "metadata": body.metadata or {},
        "instructions": body.instructions,
        "previous_response_id": body.previous_response_id,
        "background": body.background,
        "store": body.store,
        "max_output_tokens": body.max_output_tokens,
        "user": body.user,
        "input_count": sum(1 for role, _ in items if role in ("user", "assistant")),
    }
    chat, accepted = await open_call(
        services,
        user_id,
        conv,
        model=body.model,
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_output_tokens,
        options=options,
        fallbacks=body.fallback_models,
    )
    # What the row holds now, without reading it back: its own state is what comes next.
    row = RowState(accepted.generation_id, chat.id, "queued", "", chat.created_at)
    return Stored(row, chat)


async def history_through(services: Services, row: StoredRow) -> list[tuple[str, str]]:
    """The conversation a response saw and said: its session's turns up to it."""
    async with services.db.sessionmaker() as db:
        rows = (
            await db.execute(
                select(Message.role, Message.content)
                .where(
                    Message.session_id == row.session_id,
                    Message.pk <= row.pk,
                    Message.content != "",
                    Message.role.in_(("user", "assistant")),
                )
                .order_by(Message.pk)
            )
        ).all()
    return [(role, content) for role, content in rows]


async def load(services: Services, user_id: str, response_id: str) -> Loaded:
    """Another user's response is missing, exactly like one that does not exist."""
    generation_id = generation_id_of(response_id, RESPONSE_PREFIX, "response")
    try:
        row = await services.store.get(generation_id, user_id)
    except NotFound:
        raise NotFound(f"response {response_id[:80]!r} not found", code="not_found") from None
    async with services.db.sessionmaker() as db:
        chat = await db.get(ChatSession, row.session_id)
    if chat is None or chat.kind != "api" or (chat.options or {}).get("api") != "responses":
        raise NotFound(f"response {response_id[:80]!r} not found", code="not_found")
    return Loaded(row, chat)


async def content_now(services: Services, stored: Stored) -> str:
    """The text so far: the stream log is ahead of the last flush while it runs."""
    if stored.row.status in ACTIVE:
        snap = await services.log.snapshot(stored.row.id)
        if snap is not None and snap[1] >= stored.row.last_seq:
            return snap[0]
    return stored.row.content


async def cancel(services: Services, user_id: str, response_id: str) -> Loaded:
    stored = await load(services, user_id, response_id)
    await services.generations.cancel(stored.generation_id, user_id)
    return await load(services, user_id, response_id)


async def delete(services: Services, user_id: str, response_id: str) -> None:
    stored = await load(services, user_id, response_id)
    if stored.row.status in ACTIVE:
        await services.generations.cancel(stored.generation_id, user_id)
    async with services.db.sessionmaker() as db:
        await services.sessions.delete(db, user_id, stored.chat.id)


async def input_items(services: Services, stored: Loaded, limit: int, order: str, after: str | None) -> list[Message]:
    """This response's own input (not what it continued), as stored messages."""
    count = (stored.chat.options or {}).get("input_count", 0)
    async with services.db.sessionmaker() as db:
        rows = list(
            (
                await db.scalars(
                    select(Message)
                    .where(
                        Message.session_id == stored.chat.id,
                        Message.pk < stored.row.pk,
                        Message.role.in_(("user", "assistant")),
                    )
                    .order_by(Message.pk.desc())
                    .limit(count)
                )
            ).all()
        )
    if order == "asc":
        rows.reverse()
    if after is not None:
        ids = [m.id for m in rows]
        after_id = after.removeprefix("msg_").upper()
        if after_id not in ids:
            raise InvalidInput(f"after: {after[:80]!r} is not an item of this response", code="invalid_cursor")
        rows = rows[ids.index(after_id) + 1 :]
    return rows[:limit]


async def load_by_id(services: Services, stored: Stored) -> Loaded:
    """The same response read again (its final row), without the owner check done before."""
    row = await services.store.get(stored.generation_id)
    return Loaded(row, stored.chat)


def ended(stored: Stored, done: JSONObject, content: str) -> Stored:
    """The response as its done frame says it ended (`done`: the frame's JSON), with the
    text a reader saw whole."""
    row = RowState(
        id=stored.row.id,
        session_id=stored.row.session_id,
        created_at=stored.row.created_at,
        status=done["status"],
        finish_reason=done["finish_reason"],
        usage=done.get("usage"),
        error=done.get("error"),
        model=done.get("model"),
        content=content,
        last_seq=done["seq"],
    )
    return Stored(row, stored.chat)
