"""CPU of turning one generation's frames into each route's SSE bytes, outside the server:
native SSE events (frames.sse_event), chat.completion.chunk events (services/openai/
chat_stream.py) and Responses events (services/openai/response_stream.py), for a
100-token generation delivered one chunk per batch, as a caught-up reader gets it.

    .venv/bin/python -m bench.openai_translate

Prints microseconds per generation; figures in bench/README.md."""

import timeit
from datetime import UTC, datetime
from types import SimpleNamespace

from models.db import ChatSession
from services.generations.service import Accepted
from services.openai import responses
from services.openai.chat import Started
from services.openai.chat_stream import ChatChunks
from services.openai.response_stream import ResponseEvents
from services.streaming import frames

GID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
TOKENS = 100


def fixtures():
    now = datetime.now(UTC)
    chat = ChatSession(
        id=GID,
        user_id=GID,
        title="",
        model_name="openai/fake-model",
        kind="api",
        options={"api": "responses"},
        temperature=1.0,
        top_p=1.0,
        max_tokens=TOKENS,
        system_prompt=None,
        fallback_models=[],
        created_at=now,
        updated_at=now,
    )
    row = SimpleNamespace(
        id=GID,
        session_id=GID,
        status="queued",
        content="",
        created_at=now,
        model=None,
        finish_reason=None,
        usage=None,
        error=None,
        last_seq=0,
    )
    chunks = [frames.chunk(GID, i + 1, f"t{i} ") for i in range(TOKENS)]
    done = frames.done(
        GID,
        TOKENS + 1,
        "completed",
        "stop",
        {"prompt_tokens": 5, "completion_tokens": TOKENS},
        None,
        "openai/fake-model",
    )
    return responses.Stored(row, chat), chunks, done


def main(number: int = 2000) -> None:
    stored, chunks, done = fixtures()

    def native():
        for frame in (*chunks, done):
            frames.sse_event(frame)

    def chat():
        started = Started(Accepted(GID, GID, 0, None, True), "chatcmpl-" + GID, "openai/fake-model", 1, True)
        translator = ChatChunks(started)
        translator.first()
        for frame in (*chunks, done):
            translator.translate([frame])

    def resp():
        translator = ResponseEvents(None, stored, -1)
        translator.prelude()
        for frame in (*chunks, done):
            translator.translate([frame])

    for name, fn in (("native SSE", native), ("chat completions", chat), ("responses", resp)):
        print(f"{name:>17}: {timeit.timeit(fn, number=number) / number * 1e6:7.1f} us per {TOKENS}-token generation")


if __name__ == "__main__":
    main()
