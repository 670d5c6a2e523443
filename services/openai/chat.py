"""POST /v1/chat/completions: a chat.completion request started as a generation, and its
stored result as a chat.completion object."""

import time
from dataclasses import dataclass

from models.openai_schemas import ChatCompletionIn
from services.container import Services
from services.errors import InvalidInput, ProviderError
from services.generations.service import Accepted
from services.generations.store_types import GenerationRow
from services.json_types import JSONObject
from services.openai.conversation import conversation, open_call, text_of, unsupported

COMPLETION_PREFIX = "chatcmpl-"
REFUSED = ("tools", "tool_choice", "functions", "function_call", "audio", "prediction")
# finish_reason for each generation ending: OpenAI knows only "stop" and "length" for text
FINISH = {"completed": "stop", "incomplete": "length", "cancelled": "stop"}


@dataclass
class Started:
    accepted: Accepted
    completion_id: str
    model: str
    created: int
    include_usage: bool


def check_refused(body: ChatCompletionIn) -> None:
    extras = body.extras()
    for name in REFUSED:
        if extras.get(name):
            raise unsupported(f"{name}:")
    if body.n not in (None, 1):
        raise InvalidInput("n: only 1 is supported yet", code="unsupported_parameter")
    if (extras.get("response_format") or {}).get("type", "text") != "text":
        raise unsupported("response_format other than text:")
    if "audio" in (extras.get("modalities") or ()):
        raise unsupported("modalities: audio")


async def start(services: Services, user_id: str, body: ChatCompletionIn) -> Started:
    check_refused(body)
    items = [(m.role, text_of(m.content, f"messages[{i}].content")) for i, m in enumerate(body.messages)]
    if any(role in ("tool", "function") for role, _ in items):
        raise unsupported("messages of role tool or function:")
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    options: JSONObject = {"api": "chat.completions", "stop": stop, "metadata": body.metadata or {}, "user": body.user}
    chat, accepted = await open_call(
        services,
        user_id,
        conversation(services, items),
        model=body.model,
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        options=options,
        fallbacks=body.fallback_models,
    )
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return Started(
        accepted, COMPLETION_PREFIX + accepted.generation_id, chat.model_name, int(time.time()), include_usage
    )


def usage_of(row: GenerationRow) -> JSONObject:
    usage = row.usage or {}
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def failure_of(row: GenerationRow) -> ProviderError:
    error = row.error or {}
    return ProviderError(error.get("message") or "the model failed", code=error.get("code") or "provider_error")


async def completion(services: Services, started: Started) -> JSONObject:
    """Waits for the end; a failed generation is the provider's error (its status, its code)."""
    await services.generations.wait_done(started.accepted.generation_id)
    row = await services.store.get(started.accepted.generation_id)
    if row.status == "failed":
        raise failure_of(row)
    return {
        "id": started.completion_id,
        "object": "chat.completion",
        "created": started.created,
        "model": row.model or started.model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": row.content, "refusal": None},
                "logprobs": None,
                "finish_reason": FINISH.get(row.status, "stop"),
            }
        ],
        "usage": usage_of(row),
    }
