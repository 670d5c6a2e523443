"""What happens once a generation has ended (after its done frame went out): its usage is
recorded, its metrics, span and log event are written. Once per generation, never per
token: the runner hands over its counts and times."""

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from services.json_types import JSONObject
from services.observability import metrics, tracing

if TYPE_CHECKING:
    from services.generations.state import GenerationState
    from services.usage import UsageService

log = logging.getLogger("chat.generation")


@dataclass
class Ended:
    state: "GenerationState"  # the runner's state: generation_id, model, started, first_token_at, span (loop times)
    ending: str  # the runner's ending (stop, length, timeout, loop, cancelled, error, shutdown)
    status: str
    finish_reason: str
    usage: JSONObject
    error: JSONObject | None
    content: str
    ended: float = field(default_factory=lambda: asyncio.get_running_loop().time())


class GenerationEnd:
    def __init__(self, usage_service: "UsageService", log_message_text: bool = False) -> None:
        self.usage = usage_service
        self.log_message_text = log_message_text

    async def __call__(self, end: Ended) -> None:
        st = end.state
        metrics.record_end(
            metrics.provider_of(st.model),
            end.status,
            end.finish_reason,
            end.ending,
            end.usage,
            st.started,
            st.first_token_at,
            end.ended,
        )
        if st.span is not None:
            tracing.end_generation(st.span, st.model, end.status, end.finish_reason, end.usage, end.error)
        owner = None
        try:
            owner = await self.usage.record(st.generation_id, st.model, end.usage)
        except Exception:  # the answer is stored; only its usage row is missing
            log.exception("could not record the usage of generation %s", st.generation_id)
        user_id, session_id = owner or (None, None)
        fields = {
            "event": "generation_end",
            "generation_id": st.generation_id,
            "session_id": session_id,
            "user_id": user_id,
            "model": st.model,
            "status": end.status,
            "finish_reason": end.finish_reason,
            "error_code": (end.error or {}).get("code"),
            "duration_ms": round((end.ended - st.started) * 1000, 1),
            "ttft_ms": None if st.first_token_at is None else round((st.first_token_at - st.started) * 1000, 1),
            "prompt_tokens": end.usage.get("prompt_tokens"),
            "completion_tokens": end.usage.get("completion_tokens"),
            "usage_estimated": bool(end.usage.get("estimated")),
        }
        if self.log_message_text:
            fields["content"] = end.content
        log.info("generation %s %s/%s", st.generation_id, end.status, end.finish_reason, extra=fields)
