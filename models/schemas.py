"""Request and response bodies of the REST API."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

ULID_PATTERN = r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$"
Ulid = Annotated[str, StringConstraints(pattern=ULID_PATTERN), AfterValidator(str.upper)]
# The largest integer SQLite and PostgreSQL (BIGINT) store: every integer input that reaches
# a query is bounded by it, so none overflows the driver.
INT64_MAX = 2**63 - 1
LAST_EVENT_ID_DIGITS = 18  # every number this long is below 2**63, and a schema pattern can say so


# Blank means white space to Python's str.strip() or to a JSON Schema (ECMAScript) `\s`: the
# two disagree on U+001C-U+001F and U+0085 (Python only) and U+FEFF (ECMAScript only), and a
# schema that says "not blank" must refuse exactly what the service refuses.
NOT_BLANK_PATTERN = r"[^\s\x1c-\x1f\x85\ufeff]"


def is_blank(value: str) -> bool:
    return value.isspace() or not value.replace("\ufeff", "").strip()


def is_unicode_text(value: str) -> bool:
    """False for a string no database can store: JSON may escape a lone surrogate (`"\\ud800"`)
    that Python decodes into a str but UTF-8 cannot encode."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unicode_text(value: str) -> str:
    if not is_unicode_text(value):
        raise PydanticCustomError("invalid_unicode", "must be valid Unicode text (no lone surrogates)")
    return value


# Every string of a request body is Text (or a type built on it).
Text = Annotated[str, AfterValidator(_unicode_text)]
ModelName = Annotated[Text, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Temperature = Annotated[float, Field(ge=0.0, le=2.0, description="0 to 2")]


def _json_number(value: object) -> int | float:
    # JSON Schema counts 5.0 as the integer 5; a boolean or a string is no number at all.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be an integer")
    return value


MaxTokens = Annotated[
    int, Field(ge=1, le=131_072, strict=False, description="1 to 131072"), BeforeValidator(_json_number)
]
TopP = Annotated[float, Field(gt=0.0, le=1.0, description="greater than 0, at most 1")]
Title = Annotated[Text, StringConstraints(max_length=200, strip_whitespace=True)]


class Strict(BaseModel):
    # Strict types: `false` is no temperature and "5" no max_tokens, as the schema says.
    model_config = ConfigDict(extra="forbid", strict=True)


class UserCreate(Strict):
    username: Text = Field(min_length=1, max_length=64)
    password: Text = Field(min_length=1, max_length=256)


class UserOut(BaseModel):
    id: str
    username: str


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class SessionConfig(BaseModel):
    model_name: str
    temperature: float
    max_tokens: int
    top_p: float
    system_prompt: str | None = None
    fallback_models: list[str] = []


class SetLLM(Strict):
    model_name: ModelName | None = None  # default: DEFAULT_MODEL
    temperature: Temperature = 0.7
    max_tokens: MaxTokens = 1024
    top_p: TopP = 1.0
    system_prompt: Text | None = None
    fallback_models: list[ModelName] = Field(default_factory=list, max_length=3)
    title: Title | None = None


class SessionPatch(Strict):
    model_name: ModelName | None = None
    temperature: Temperature | None = None
    max_tokens: MaxTokens | None = None
    top_p: TopP | None = None
    system_prompt: Text | None = None
    fallback_models: list[ModelName] | None = Field(default=None, max_length=3)
    title: Title | None = None


class SessionOut(BaseModel):
    session_id: str
    title: str
    config: SessionConfig
    created_at: datetime
    updated_at: datetime
    # In listings: when its last message was sent (null before the first one); the list is
    # ordered by it. Not computed for a single session's answers.
    last_message_at: datetime | None = None
    snippet: str | None = None  # with ?q=: words around the match in the newest matching message


class MessageOut(BaseModel):
    id: str
    role: str
    content: str
    status: str
    created_at: datetime
    generation_id: str | None = None
    finish_reason: str | None = None
    error: dict[str, Any] | None = None
    model: str | None = None  # assistant messages: the `<provider>/<model>` that answered
    usage: dict[str, Any] | None = None  # assistant messages: tokens; `estimated: true` when counted here
    finished_at: datetime | None = None
    parent_id: str | None = None  # the message this one follows (None: the first)
    # The versions at this point of the conversation: this message and its siblings (regenerated
    # answers, edited messages), oldest first; one id where there is no fork.
    versions: list[str] = []


class SessionDetail(SessionOut):
    history: list[MessageOut]  # the active branch, first message first
    active_leaf_id: str | None = None


class EditIn(Strict):
    content: Text
    client_msg_id: Annotated[Text, StringConstraints(min_length=1, max_length=128)] | None = None


class SwitchIn(Strict):
    message_id: Ulid


class BranchOut(BaseModel):
    session_id: str
    generation_id: str
    status: str  # queued, or running when it started at once
    position: int  # answers of the session ahead of it


class SwitchOut(BaseModel):
    session_id: str
    active_leaf_id: str


class SessionPage(BaseModel):
    items: list[SessionOut]
    total: int
    limit: int
    offset: int


class ChatIn(Strict):
    session_id: Ulid | None = None
    message: Text
    client_msg_id: Annotated[Text, StringConstraints(min_length=1, max_length=128)] | None = None
    stream: bool = False
    background: bool = False


class ChatOut(BaseModel):
    session_id: str
    generation_id: str
    response: str
    status: str
    finish_reason: str | None
    usage: dict[str, Any] | None
    model: str | None = None
    error: dict[str, Any] | None = None


class GenerationOut(BaseModel):
    id: str
    session_id: str
    status: str
    finish_reason: str | None
    content: str
    last_seq: int
    usage: dict[str, Any] | None
    model: str | None = None
    error: dict[str, Any] | None = None
    created_at: datetime
    finished_at: datetime | None
