"""The socket's tree frames (docs/protocol.md, "Branches"): `regenerate`, `edit` and
`continue` answer like a `message` (an `accepted` frame, then the new answer's frames);
`switch` answers with a `switched` frame naming the new active leaf."""

import re
from typing import Any

from models.schemas import ULID_PATTERN, is_unicode_text
from services import tree
from services.container import Services
from services.errors import InvalidInput
from services.generations.service import Accepted
from services.streaming import frames

FRAME_TYPES = ("regenerate", "edit", "continue", "switch")
_ULID = re.compile(ULID_PATTERN)


def _message_id(value: object) -> str:
    if not isinstance(value, str) or not _ULID.match(value):
        raise InvalidInput("message_id must be a ULID", code="invalid_id")
    return value.upper()


def _edit_fields(frame: dict[str, Any]) -> tuple[str, str | None]:
    content, client_msg_id = frame.get("content"), frame.get("client_msg_id")
    if not isinstance(content, str):
        raise InvalidInput("edit frame needs a string 'content'", code="missing_field")
    if not is_unicode_text(content):
        raise InvalidInput("content must be valid Unicode text (no lone surrogates)", code="invalid_field")
    if client_msg_id is not None and (
        not isinstance(client_msg_id, str) or not 0 < len(client_msg_id) <= 128 or not is_unicode_text(client_msg_id)
    ):
        raise InvalidInput("client_msg_id must be a string of 1-128 characters", code="invalid_field")
    return content, client_msg_id


async def handle(
    services: Services, user_id: str, session_id: str, kind: str, frame: dict[str, Any]
) -> tuple[str, str | None]:
    """The reply frame, and the generation to follow (None for `switch`)."""
    message_id = _message_id(frame.get("message_id"))
    if kind == "switch":
        leaf = await tree.switch(services, user_id, session_id, message_id)
        return frames.encode({"type": "switched", "session_id": session_id, "active_leaf_id": leaf}), None
    content, client_msg_id = _edit_fields(frame) if kind == "edit" else (None, None)
    accepted: Accepted = await tree.branch(
        services, tree.Branch(user_id, session_id, message_id, kind, content, client_msg_id)
    )
    accepted.client_msg_id = client_msg_id
    return accepted.frame(), accepted.generation_id
