"""Frame encoding, in one place. Frames are encoded to JSON once, when produced, and the
same text goes to every reader: WebSocket text frames as is, SSE wrapped by `sse_event`."""

import json
from typing import NamedTuple

from services.json_types import JSONObject

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_str = json.encoder.encode_basestring  # a JSON string literal, non-ASCII kept as _dumps keeps it

TERMINAL = frozenset({"completed", "cancelled", "incomplete", "failed"})


class Frame(NamedTuple):
    seq: int
    type: str
    data: str  # the frame's JSON text


def encode(obj: JSONObject) -> str:
    return _dumps(obj)


def chunk(generation_id: str, seq: int, text: str) -> Frame:
    # The per-token frame, by template: the same text as _dumps of the dict, ~20x cheaper.
    return Frame(
        seq, "chunk", f'{{"type":"chunk","generation_id":{_str(generation_id)},"seq":{seq:d},"chunk":{_str(text)}}}'
    )


def done(
    generation_id: str,
    seq: int,
    status: str,
    finish_reason: str,
    usage: JSONObject | None,
    error: JSONObject | None = None,
    model: str | None = None,
) -> Frame:
    body: JSONObject = {
        "type": "done",
        "generation_id": generation_id,
        "seq": seq,
        "status": status,
        "finish_reason": finish_reason,
        "usage": usage or {"prompt_tokens": 0, "completion_tokens": 0},
    }
    if error:
        body["error"] = error
    if model:
        body["model"] = model
    return Frame(seq, "done", _dumps(body))


def snapshot(generation_id: str, seq: int, content: str, status: str) -> Frame:
    return Frame(
        seq,
        "snapshot",
        _dumps(
            {
                "type": "snapshot",
                "generation_id": generation_id,
                "seq": seq,
                "content": content,
                "status": status,
            }
        ),
    )


def accepted(session_id: str, generation_id: str, position: int, client_msg_id: str | None) -> str:
    body: JSONObject = {
        "type": "accepted",
        "session_id": session_id,
        "generation_id": generation_id,
        "position": position,
    }
    if client_msg_id is not None:
        body["client_msg_id"] = client_msg_id
    return _dumps(body)


def error(code: str, message: str, generation_id: str | None = None, client_msg_id: str | None = None) -> str:
    """`client_msg_id`, beyond PROTOCOL.md, ties a refused message to the client's send."""
    body: JSONObject = {"type": "error", "code": code, "message": message}
    if generation_id:
        body["generation_id"] = generation_id
    if client_msg_id:
        body["client_msg_id"] = client_msg_id
    return _dumps(body)


def sse_event(frame: Frame) -> bytes:
    return f"id: {frame.seq}\nevent: {frame.type}\ndata: {frame.data}\n\n".encode()


def sse_plain(event_type: str, data: str) -> bytes:
    """An event outside a generation's sequence (session, error): no id, so it never
    moves the client's Last-Event-ID."""
    return f"event: {event_type}\ndata: {data}\n\n".encode()


SSE_PING = b": ping\n\n"
