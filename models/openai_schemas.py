"""Request bodies of the OpenAI-compatible routes (/v1). Unknown fields are ignored, as
clients written against OpenAI send optional ones freely; the features this service does not
offer yet (several choices, tools, images, audio) are refused by name in
services/openai/conversation.py, so a client never gets a silently different answer."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from models.schemas import MaxTokens, ModelName, Temperature, TopP

Text = Annotated[str, StringConstraints(max_length=1_000_000)]
MetadataKey = Annotated[str, StringConstraints(max_length=64)]
MetadataValue = Annotated[str, StringConstraints(max_length=512)]
# OpenAI's own bounds: at most 16 pairs, keys of 64 and values of 512 characters.
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=16)]
Stop = Annotated[str, StringConstraints(min_length=1, max_length=256)]
# Beyond OpenAI's API (SDKs send it with extra_body): the models tried in order when the
# primary fails before its first token, as a session's fallback_models.
Fallbacks = Annotated[list[ModelName], Field(max_length=3)] | None


class Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")

    def extras(self) -> dict[str, Any]:
        return dict(self.__pydantic_extra__ or {})


class ContentPart(Lenient):
    type: str
    text: Text | None = None


Content = Text | Annotated[list[ContentPart], Field(max_length=256)] | None


class ChatMessage(Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Content = None
    name: Annotated[str, StringConstraints(max_length=64)] | None = None


class StreamOptions(Lenient):
    include_usage: bool = False


class ChatCompletionIn(Lenient):
    model: ModelName
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=1024)]
    temperature: Temperature | None = None
    top_p: TopP | None = None
    max_tokens: MaxTokens | None = None
    max_completion_tokens: MaxTokens | None = None
    stop: Stop | Annotated[list[Stop], Field(max_length=4)] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: Annotated[int, Field(ge=1, le=128)] | None = None
    user: Annotated[str, StringConstraints(max_length=256)] | None = None
    metadata: Metadata | None = None
    fallback_models: Fallbacks = None


class InputItem(Lenient):
    type: Literal["message"] | str = "message"
    role: Literal["system", "developer", "user", "assistant"] | None = None
    content: Content = None


class ResponseIn(Lenient):
    model: ModelName
    input: Text | Annotated[list[InputItem], Field(min_length=1, max_length=1024)]
    instructions: Text | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    max_output_tokens: MaxTokens | None = None
    stream: bool = False
    background: bool = False
    store: bool = True
    previous_response_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    metadata: Metadata | None = None
    user: Annotated[str, StringConstraints(max_length=256)] | None = None
    fallback_models: Fallbacks = None
