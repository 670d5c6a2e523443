"""OpenAI messages and input items turned into a session of kind "api" and its turn.

Every /v1 call that generates gets a session of its own (kind "api", kept out of the UI's
list): system and developer messages become its system prompt, the earlier user and
assistant messages its stored history, and the last user message the turn that starts the
generation. So the answer is an ordinary generation: stored, resumable, cancellable."""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from models.db import ChatSession, new_id, utcnow
from models.openai_schemas import Content
from models.schemas import ULID_PATTERN, is_blank
from services.container import Services
from services.errors import InvalidInput, NotFound
from services.generations.service import Accepted
from services.generations.store_types import NewCall
from services.json_types import JSONObject

TEXT_PARTS = frozenset({"text", "input_text", "output_text"})
_ULID = re.compile(ULID_PATTERN)


def generation_id_of(public_id: str, prefix: str, what: str) -> str:
    """`chatcmpl-<ulid>` / `resp_<ulid>` -> the generation id; anything else is missing."""
    ulid = public_id[len(prefix) :] if public_id.startswith(prefix) else ""
    if not _ULID.match(ulid):
        raise NotFound(f"{what} {public_id[:80]!r} not found", code="not_found")
    return ulid.upper()


def unsupported(what: str) -> InvalidInput:
    return InvalidInput(f"{what} not supported yet", code="unsupported_parameter")


def text_of(content: Content, where: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    out = []
    for part in content:
        if part.type not in TEXT_PARTS:
            raise InvalidInput(
                f"{where}: content parts of type {part.type!r} are not supported yet (text only)",
                code="unsupported_content",
            )
        out.append(part.text or "")
    return "".join(out)


@dataclass
class Conversation:
    system: str | None
    history: list[tuple[str, str]]  # (role, text) before the turn, oldest first
    turn: str  # the last user message: what the generation answers


def conversation(
    services: Services,
    items: Sequence[tuple[str, str]],
    instructions: str | None = None,
    prefix: list[tuple[str, str]] | None = None,
) -> Conversation:
    """`items` are (role, text) in order; `prefix` is an earlier response's history."""
    s = services.settings
    if len(items) + len(prefix or ()) > s.openai_max_messages:
        raise InvalidInput(f"messages: at most {s.openai_max_messages}", code="too_many_messages")
    system = [instructions] if instructions else []
    system += [text for role, text in items if role in ("system", "developer") and text]
    turns = [(role, text) for role, text in items if role in ("user", "assistant")]
    if not turns or turns[-1][0] != "user":
        raise InvalidInput("messages: the last message must be the user's", code="invalid_messages")
    if is_blank(turns[-1][1]):
        raise InvalidInput("messages: the last user message is empty", code="empty_message")
    for _, text in turns:
        if len(text) > s.max_message_chars:
            raise InvalidInput(f"message: at most {s.max_message_chars} characters", code="message_too_long")
    prompt = "\n\n".join(system) or None
    if prompt and len(prompt) > s.max_system_prompt_chars:
        raise InvalidInput(
            f"system messages: at most {s.max_system_prompt_chars} characters together", code="system_prompt_too_long"
        )
    return Conversation(prompt, [*(prefix or ()), *turns[:-1]], turns[-1][1])


async def open_call(
    services: Services,
    user_id: str,
    conv: Conversation,
    *,
    model: str,
    temperature: float | None,
    top_p: float | None,
    max_tokens: int | None,
    options: JSONObject,
    fallbacks: list[str] | None = None,
) -> tuple[ChatSession, Accepted]:
    """Creates the call's session with its history and submits its turn."""
    s = services.settings
    now, session_id = utcnow(), new_id()
    chat = dict(
        id=session_id,
        user_id=user_id,
        title=" ".join(conv.turn.split())[:60],  # for GET /sessions?kind=api
        model_name=await services.providers.validate(model),
        kind="api",
        options=options,
        temperature=1.0 if temperature is None else temperature,
        top_p=1.0 if top_p is None else top_p,
        max_tokens=max_tokens or s.openai_default_max_tokens,
        system_prompt=conv.system,
        created_at=now,
        updated_at=now,
        fallback_models=[await services.providers.validate(m) for m in fallbacks or ()],
    )
    # The session, its history and its turn in one transaction, like any other send.
    call = NewCall(chat, conv.history, conv.turn)
    accepted = await services.generations.submit_with(
        session_id, lambda claim_for: services.store.create_call(call, claim_for=claim_for)
    )
    return ChatSession(**chat), accepted
