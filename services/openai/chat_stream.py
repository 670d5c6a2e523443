"""chat.completion.chunk events from a generation's frames, by byte templates.

Per token this is one slice and one concatenation: the chunk frame already holds its text as
a JSON string literal (frames.chunk), which goes into the event as is, so no JSON is encoded
or decoded and no object is built per delta. The events are what OpenAI sends: a first
chunk with the role, content deltas, a chunk with the finish_reason, the usage chunk when
`stream_options.include_usage` asked for it, then `data: [DONE]`. A generation that fails
ends with an `error` event, which the SDKs raise as an APIError."""

import json

from services.json_types import JSONObject
from services.openai.chat import FINISH, Started
from services.streaming.frames import Frame, encode

_str = json.encoder.encode_basestring
_CHUNK_KEY = ',"chunk":'  # cannot occur inside the escaped text: its quotes are escaped there
DONE = b"data: [DONE]\n\n"


def chunk_text(frame: Frame) -> str:
    """The chunk frame's text, still as its JSON string literal."""
    return frame.data[frame.data.index(_CHUNK_KEY) + len(_CHUNK_KEY) : -1]


class ChatChunks:
    """Translates one generation's frame batches into SSE bytes."""

    def __init__(self, started: Started):
        self.started = started
        head = (
            f'data: {{"id":"{started.completion_id}","object":"chat.completion.chunk",'
            f'"created":{started.created:d},"model":{_str(started.model)},"system_fingerprint":null,"choices":'
        )
        self.head = head
        self.delta_format = (
            head.replace("%", "%%") + '[{"index":0,"delta":{"content":%s},"logprobs":null,"finish_reason":null}]}\n\n'
        ).encode()
        self.finished = False

    def first(self) -> bytes:
        return (
            self.head + '[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},'
            '"logprobs":null,"finish_reason":null}]}\n\n'
        ).encode()

    def translate(self, batch: list[Frame]) -> bytes:
        out, delta_format = [], self.delta_format
        for frame in batch:
            kind = frame.type
            if kind == "chunk":
                out.append(delta_format % chunk_text(frame).encode())
            elif kind == "snapshot":  # frames no longer kept: their text at once
                content = json.loads(frame.data)["content"]
                if content:
                    out.append(delta_format % _str(content).encode())
            elif kind == "done":
                out.append(self.end(json.loads(frame.data)))
        return b"".join(out)

    def end(self, done: JSONObject) -> bytes:
        self.finished = True
        if done["status"] == "failed":
            error = done.get("error") or {}
            return (
                "data: "
                + encode(
                    {
                        "error": {
                            "message": error.get("message") or "the model failed",
                            "type": "server_error",
                            "param": None,
                            "code": error.get("code") or "provider_error",
                        }
                    }
                )
                + "\n\n"
            ).encode() + DONE
        out = (
            self.head + '[{"index":0,"delta":{},"logprobs":null,"finish_reason":'
            f'"{FINISH.get(done["status"], "stop")}"}}]}}\n\n'
        )
        if self.started.include_usage:
            usage = done.get("usage") or {}
            prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
            out += (
                self.head
                + '[],"usage":'
                + encode(
                    {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
                )
                + "}\n\n"
            )
        return out.encode() + DONE
