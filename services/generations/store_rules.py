"""The store's pure rules, shared by both implementations (store_sql.py on SQLAlchemy Core,
store_sqlite.py on the sqlite3 cursor): the queue bound, the prompt built from a branch's
history, which answers a branch may start from, the first-words title, a final write's
values. No statement here: each implementation reads the rows its own way and asks these."""

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from models.db import utcnow
from services.errors import Conflict, InvalidInput, RateLimited
from services.generations.store_types import ACTIVE, Job, JSONDict
from services.providers.base import ChatRequest

CONTINUE_PROMPT = (
    "Continue your previous answer exactly where it stopped. Do not repeat any of it and do not "
    "comment on the continuation."
)
# The endings an answer can be continued from: cut short, not finished wrong.
CONTINUABLE = frozenset({"length", "timeout", "interrupted", "cancelled"})


def check_queue(active: int, max_queued: int) -> None:
    if active >= max_queued:
        raise RateLimited(
            f"This session already has {active} answers queued or running; wait for them or cancel one.",
            code="queue_full",
        )


def first_words_title(text: str) -> str:
    """A chat's title before anyone names it: its first message's first words (services/titles.py
    replaces only this one, never a title the user set)."""
    line = " ".join(text.split())
    return line[:60] + ("…" if len(line) > 60 else "")


def path_history(path_newest_first: Iterable[Sequence[Any]], max_history: int) -> tuple[list[tuple[str, str]], bool]:
    """(history newest first, at most `max_history` turns with text; whether the answer continues
    the last one). An answer continued (and its continuations) are one assistant turn."""
    rows = [(str(role), str(content or "")) for role, content in path_newest_first]
    continuing = bool(rows) and rows[0][0] == "assistant"
    turns: list[tuple[str, str]] = []
    for role, content in rows:
        if not content:
            continue
        if turns and role == "assistant" and turns[-1][0] == "assistant":
            turns[-1] = (role, content + turns[-1][1])  # newest first: the older text goes before
        elif len(turns) < max_history:
            turns.append((role, content))
        else:
            break
    return turns, continuing


class ChatConfig(Protocol):
    """A session's generation settings as a claim reads them (a row of either driver)."""

    @property
    def system_prompt(self) -> str | None: ...
    @property
    def model_name(self) -> str: ...
    @property
    def temperature(self) -> float: ...
    @property
    def max_tokens(self) -> int: ...
    @property
    def top_p(self) -> float: ...


def build_job(
    generation_id: str,
    model: str | None,
    chat: ChatConfig,
    fallbacks: list[str] | None,
    history_newest_first: list[tuple[str, str]],
    options: JSONDict | None = None,
    continuing: bool = False,
) -> Job:
    """The request as the session's config and history stand at claim time. `options` are an
    OpenAI-compatible call's extras (only `stop` reaches the provider). `continuing`: the
    answer extends the last assistant turn, so the model is asked to go on from it."""
    turns = [{"role": "system", "content": chat.system_prompt}] if chat.system_prompt else []
    turns += [{"role": role, "content": content} for role, content in reversed(history_newest_first)]
    if continuing:
        turns.append({"role": "user", "content": CONTINUE_PROMPT})
    request = ChatRequest(
        model=model or chat.model_name,
        messages=turns,
        temperature=chat.temperature,
        max_tokens=chat.max_tokens,
        top_p=chat.top_p,
        stop=tuple((options or {}).get("stop") or ()),
    )
    return Job(generation_id, request.model, list(fallbacks or []), request)


class BranchTarget(Protocol):
    """The message a branch starts from."""

    @property
    def id(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def finish_reason(self) -> str | None: ...
    @property
    def content(self) -> str: ...
    @property
    def parent_id(self) -> str | None: ...


def answer_parent(op: str, target: BranchTarget) -> str | None:
    """The parent of the new answer, once the target is checked for the operation."""
    if op == "edit":
        if target.role != "user":
            raise InvalidInput("only a message you sent can be edited", code="not_a_user_message")
        return None  # the edited copy, inserted by the caller
    if target.role != "assistant":
        raise InvalidInput("only an answer can be regenerated or continued", code="not_an_answer")
    if target.status in ACTIVE:
        raise Conflict("this answer is still being generated; stop it first", code="generation_active")
    if op == "regenerate":
        return target.parent_id
    if target.finish_reason not in CONTINUABLE or not target.content:
        raise Conflict(
            "only an answer cut short (length, timeout, interruption, cancel) with text can be continued",
            code="not_continuable",
        )
    return target.id


def final_values(
    *,
    content: str | None,
    last_seq: int,
    status: str,
    finish_reason: str,
    usage: JSONDict | None,
    error: JSONDict | None,
    model: str | None,
) -> dict[str, Any]:
    """The columns `finalize` writes: content and model only when given."""
    values: dict[str, Any] = dict(
        status=status, finish_reason=finish_reason, last_seq=last_seq, usage=usage, error=error, finished_at=utcnow()
    )
    if content is not None:
        values["content"] = content
    if model is not None:
        values["model"] = model
    return values
