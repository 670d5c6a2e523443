"""A generation as an OpenAI Response object (and its message item), from its stored row,
its session's options and, while it runs, the text the stream log holds so far."""

from datetime import datetime
from typing import Protocol

from models.db import ChatSession, Message
from services.json_types import JSONObject

RESPONSE_PREFIX = "resp_"
MESSAGE_PREFIX = "msg_"
STATUS = {
    "queued": "queued",
    "running": "in_progress",
    "completed": "completed",
    "incomplete": "incomplete",
    "cancelled": "cancelled",
    "failed": "failed",
}
# incomplete_details.reason: OpenAI's name for a length cut, our guards' names otherwise
INCOMPLETE = {"length": "max_output_tokens", "timeout": "timeout", "loop": "loop"}


class GenerationRow(Protocol):
    """What a response is shown from: its generation's stored row (models.db.Message), or
    the state known without reading the row back (responses.RowState)."""

    @property
    def id(self) -> str: ...
    @property
    def session_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def content(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def model(self) -> str | None: ...
    @property
    def finish_reason(self) -> str | None: ...
    @property
    def usage(self) -> JSONObject | None: ...
    @property
    def error(self) -> JSONObject | None: ...
    @property
    def last_seq(self) -> int: ...


def item_status(status: str) -> str:
    return {"in_progress": "in_progress", "queued": "in_progress", "completed": "completed"}.get(status, "incomplete")


def output_part(text: str) -> JSONObject:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(generation_id: str, status: str, text: str | None) -> JSONObject:
    return {
        "id": MESSAGE_PREFIX + generation_id,
        "type": "message",
        "status": item_status(status),
        "role": "assistant",
        "content": [] if text is None else [output_part(text)],
    }


def usage_of(row: GenerationRow) -> JSONObject | None:
    if not row.usage:
        return None
    prompt, completion = row.usage.get("prompt_tokens", 0), row.usage.get("completion_tokens", 0)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + completion,
    }


def response_object(
    row: GenerationRow,
    chat: ChatSession,
    content: str | None = None,
    status: str | None = None,
    with_output: bool = True,
) -> JSONObject:
    """`status` overrides the row's (the stream's first events say in_progress); `content`
    is the text so far of a running one. `with_output=False`: the stream's opening events."""
    opts = chat.options or {}
    status = status or STATUS[row.status]
    text = row.content if content is None else content
    finished = status in ("completed", "incomplete", "cancelled", "failed")
    output = [message_item(row.id, status, text)] if with_output and (text or finished) else []
    error = None
    if status == "failed":
        error = {
            "code": (row.error or {}).get("code", "server_error"),
            "message": (row.error or {}).get("message", "the model failed"),
        }
    reason = row.finish_reason
    incomplete = {"reason": INCOMPLETE.get(reason, reason) if reason else reason} if status == "incomplete" else None
    return {
        "id": RESPONSE_PREFIX + row.id,
        "object": "response",
        "created_at": int(chat.created_at.timestamp()),
        "status": status,
        "background": bool(opts.get("background")),
        "error": error,
        "incomplete_details": incomplete,
        "instructions": opts.get("instructions"),
        "max_output_tokens": opts.get("max_output_tokens"),
        "model": row.model or chat.model_name,
        "output": output,
        "parallel_tool_calls": False,
        "previous_response_id": opts.get("previous_response_id"),
        "store": opts.get("store", True),
        "temperature": chat.temperature,
        "top_p": chat.top_p,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "truncation": "disabled",
        "usage": usage_of(row) if finished and with_output else None,
        "user": opts.get("user"),
        "metadata": opts.get("metadata") or {},
    }


def input_item(message: Message) -> JSONObject:
    kind = "input_text" if message.role == "user" else "output_text"
    part: JSONObject = {"type": kind, "text": message.content}
    if kind == "output_text":
        part["annotations"] = []
    return {
        "id": MESSAGE_PREFIX + message.id,
        "type": "message",
        "role": message.role,
        "status": "completed",
        "content": [part],
    }
