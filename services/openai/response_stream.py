"""Responses API stream events from a generation's frames, numbered from its seqs.

The numbers are a function of the generation alone, so every replica, and a rebuild from
the stored row once the stream log has expired, gives the same ones: 0 response.created,
1 response.in_progress, 2 response.output_item.added, 3 response.content_part.added, then
the delta of chunk seq s is 3 + s, and with the done frame at seq d come
response.output_text.done (3 + d), response.content_part.done (4 + d),
response.output_item.done (5 + d) and the final response.completed / .incomplete / .failed
/ .cancelled (6 + d). A reader resuming after number n reads the frames after seq n - 3.
Deltas are built from byte templates around the chunk frame's own JSON string literal."""

import json
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from services.json_types import JSONObject
from services.openai import responses
from services.openai.chat_stream import chunk_text
from services.openai.response_view import MESSAGE_PREFIX, message_item, output_part, response_object
from services.streaming.frames import Frame, encode

if TYPE_CHECKING:
    from services.container import Services

_str = json.encoder.encode_basestring
PRELUDE = 4  # events before the first delta
FINAL = {
    "completed": "response.completed",
    "incomplete": "response.incomplete",
    "failed": "response.failed",
    "cancelled": "response.incomplete",
}


def sse(kind: str, body: JSONObject) -> bytes:
    return f"event: {kind}\ndata: {encode(body)}\n\n".encode()


class ResponseEvents:
    """Translates one response's frame batches into SSE bytes, from after event `after`."""

    def __init__(self, services: "Services", stored: "responses.Stored", after: int = -1) -> None:
        self.services, self.stored, self.after = services, stored, after
        self.seq = max(0, after - (PRELUDE - 1))  # the last chunk seq this reader has
        # The chunks' JSON string literals, while this reader has seen every one from the
        # first: the text for the closing events, without reading the row again.
        self.literals: list[str] | None = [] if self.seq == 0 else None
        ids = f'"item_id":"{MESSAGE_PREFIX}{stored.generation_id}","output_index":0,"content_index":0'
        self.delta_format = (
            b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
            b'"sequence_number":%d,' + ids.encode() + b',"delta":%s,"logprobs":[]}\n\n'
        )

    def relay_from(self) -> int:
        """The seq to follow the generation from; a finished one is always read up to its
        done frame, so the closing events can be numbered."""
        row = self.stored.row
        if row.status not in ("queued", "running") and row.last_seq:
            return min(self.seq, row.last_seq - 1)
        return self.seq

    def prelude(self) -> bytes:
        row, chat = self.stored.row, self.stored.chat
        opening = response_object(row, chat, status="in_progress", with_output=False)
        created = {**opening, "status": "queued" if row.status == "queued" else "in_progress"}
        events: list[tuple[str, JSONObject]] = [
            ("response.created", {"response": created}),
            ("response.in_progress", {"response": opening}),
            ("response.output_item.added", {"output_index": 0, "item": message_item(row.id, "in_progress", None)}),
            (
                "response.content_part.added",
                {"item_id": MESSAGE_PREFIX + row.id, "output_index": 0, "content_index": 0, "part": output_part("")},
            ),
        ]
        return b"".join(
            sse(kind, {"type": kind, "sequence_number": n, **body})
            for n, (kind, body) in enumerate(events)
            if n > self.after
        )

    def delta(self, number: int, literal: str) -> bytes:
        return self.delta_format % (number, literal.encode())

    def translate(self, batch: list[Frame]) -> bytes | Coroutine[Any, Any, bytes]:
        """The batch's events: bytes, or (a done frame whose text this reader has not all
        seen) a coroutine that reads the stored row first. Synchronous per token."""
        out: list[bytes] = []
        literals, after, delta_format = self.literals, self.after, self.delta_format
        for frame in batch:
            kind = frame.type
            if kind == "chunk":
                literal = chunk_text(frame)
                if literals is not None:
                    literals.append(literal)
                if frame.seq + PRELUDE - 1 > after:
                    out.append(delta_format % (frame.seq + PRELUDE - 1, literal.encode()))
                self.seq = frame.seq
            elif kind == "snapshot":
                out.append(self.snapshot(frame))
                literals = self.literals
            elif kind == "done":
                if self.literals is None:
                    return self._closing_from_store(b"".join(out), frame.seq)
                text = json.loads('"' + "".join(lit[1:-1] for lit in self.literals) + '"')
                out.append(self.closing(responses.ended(self.stored, json.loads(frame.data), text), frame.seq))
        return b"".join(out)

    async def _closing_from_store(self, head: bytes, done_seq: int) -> bytes:
        return head + self.closing(await responses.load_by_id(self.services, self.stored), done_seq)

    def snapshot(self, frame: Frame) -> bytes:
        """Frames the log no longer holds: their text as one delta, exact for a reader that
        had no text yet. One that had some cannot be told where its text ends."""
        content = json.loads(frame.data)["content"]
        seq, self.seq, self.literals = self.seq, frame.seq, None
        if seq == 0:
            return self.delta(frame.seq + PRELUDE - 1, _str(content)) if content else b""
        return sse(
            "error",
            {
                "type": "error",
                "sequence_number": frame.seq + PRELUDE - 1,
                "code": "resume_unavailable",
                "param": None,
                "message": "the events after this sequence number are no longer kept; "
                "GET the response for its full text",
            },
        )

    def closing(self, stored: "responses.Stored", done_seq: int) -> bytes:
        row, chat = stored.row, stored.chat
        final = response_object(row, chat)
        item = final["output"][0] if final["output"] else message_item(row.id, final["status"], "")
        text = row.content
        base = {"item_id": MESSAGE_PREFIX + row.id, "output_index": 0, "content_index": 0}
        events: list[tuple[str, JSONObject]] = [
            ("response.output_text.done", {**base, "text": text, "logprobs": []}),
            ("response.content_part.done", {**base, "part": output_part(text)}),
            ("response.output_item.done", {"output_index": 0, "item": item}),
            (FINAL[row.status], {"response": final}),
        ]
        first = done_seq + PRELUDE - 1
        return b"".join(
            sse(kind, {"type": kind, "sequence_number": first + i, **body})
            for i, (kind, body) in enumerate(events)
            if first + i > self.after
        )
