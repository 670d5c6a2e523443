"""Request and response bodies of the REST API."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

ULID_PATTERN = r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$"
Ulid = Annotated[str, StringConstraints(pattern=ULID_PATTERN), AfterValidator(str.upper)]

ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Temperature = Annotated[float, Field(ge=0.0, le=2.0, description="0 to 2")]


def _json_number(value):
    # JSON Schema counts 5.0 as the integer 5; a boolean or a string is no number at all.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be an integer")
    return value


MaxTokens = Annotated[int, Field(ge=1, le=131_072, strict=False, description="1 to 131072"),
                      BeforeValidator(_json_number)]
TopP = Annotated[float, Field(gt=0.0, le=1.0, description="greater than 0, at most 1")]
Title = Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)]


class Strict(BaseModel):
    # Strict types: `false` is no temperature and "5" no max_tokens, as the schema says.
    model_config = ConfigDict(extra="forbid", strict=True)


class UserCreate(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


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
    system_prompt: str | None = None
    fallback_models: list[ModelName] = Field(default_factory=list, max_length=3)
    title: Title | None = None


class SessionPatch(Strict):
    model_name: ModelName | None = None
    temperature: Temperature | None = None
    max_tokens: MaxTokens | None = None
    top_p: TopP | None = None
    system_prompt: str | None = None
    fallback_models: list[ModelName] | None = Field(default=None, max_length=3)
    title: Title | None = None


class SessionOut(BaseModel):
    session_id: str
    title: str
    config: SessionConfig
    created_at: datetime
    updated_at: datetime


class MessageOut(BaseModel):
    id: str
    role: str
    content: str
    status: str
    created_at: datetime
    generation_id: str | None = None
    finish_reason: str | None = None
    error: dict | None = None
    model: str | None = None  # assistant messages: the `<provider>/<model>` that answered


class SessionDetail(SessionOut):
    history: list[MessageOut]


class SessionPage(BaseModel):
    items: list[SessionOut]
    total: int
    limit: int
    offset: int


class ChatIn(Strict):
    session_id: Ulid | None = None
    message: str
    client_msg_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    stream: bool = False
    background: bool = False


class ChatOut(BaseModel):
    session_id: str
    generation_id: str
    response: str
    status: str
    finish_reason: str | None
    usage: dict | None
    model: str | None = None
    error: dict | None = None


class GenerationOut(BaseModel):
    id: str
    session_id: str
    status: str
    finish_reason: str | None
    content: str
    last_seq: int
    usage: dict | None
    model: str | None = None
    error: dict | None = None
    created_at: datetime
    finished_at: datetime | None
