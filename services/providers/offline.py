"""The built-in offline provider: no network, no key. It streams a deterministic Markdown
reply built from the request, so the whole service can be tried and tested anywhere. Its
model is named `offline/simulated` so nobody mistakes it for a real model."""

import asyncio
import re
from collections.abc import AsyncGenerator, Callable

from services.providers.base import ChatRequest, Finish, Provider, StreamEvent, Usage, estimate_tokens, prompt_tokens

_TOKEN = re.compile(r"\S+\s*|\s+")
MODEL = "simulated"


def compose_reply(request: ChatRequest, base_url: str | None = None, models: list[str] | None = None) -> str:
    user_turns = [m for m in request.messages if m["role"] == "user"]
    last = user_turns[-1]["content"] if user_turns else ""
    quoted = "\n".join("> " + line for line in last.splitlines()) or "> (empty message)"
    words = len(last.split())
    system = next((m["content"] for m in request.messages if m["role"] == "system"), None)
    lines = [
        "**Simulated reply** from the built-in offline model (`offline/simulated`): no LLM "
        "wrote this, it is composed locally from your message.",
        "",
        "You wrote:",
        "",
        quoted,
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| words | {words} |",
        f"| characters | {len(last)} |",
        f"| your message number in this chat | {len(user_turns)} |",
        f"| temperature / top_p | {request.temperature} / {request.top_p} |",
    ]
    if system:
        lines += ["", f"A system prompt of {len(system)} characters is set for this session."]
    return "\n".join(lines + how_to_switch(base_url, models or [])) + "\n"


def how_to_switch(base_url: str | None, models: list[str]) -> list[str]:
    """How to pick a real model: one this service offers right now, at its own address (or a
    placeholder for it when PUBLIC_BASE_URL is unset), never a hard-coded one."""
    url = (base_url or "$BASE").rstrip("/")
    where = [] if base_url else ["", "(with `BASE` set to this service's address)."]
    if not models:
        return [
            "",
            "No other model is configured. To chat with a real model, set `OPENAI_API_KEY` "
            "(or `OLLAMA_BASE_URL`, `ANTHROPIC_API_KEY`, ...) and restart; then "
            f"`GET {url}/models` lists the models you can pick:",
            "",
            "```bash",
            f'curl {url}/models -H "Authorization: Bearer $TOKEN"',
            "```",
            *where,
        ]
    return [
        "",
        f"Models this service offers: {', '.join(f'`{m}`' for m in models[:5])}. Pick one with:",
        "",
        "```bash",
        f'curl -X POST {url}/set-llm -H "Authorization: Bearer $TOKEN" \\',
        f"  -H 'Content-Type: application/json' -d '{{\"model_name\": \"{models[0]}\"}}'",
        "```",
        *where,
    ]


class OfflineProvider(Provider):
    name = "offline"
    kind = "offline"

    def __init__(
        self,
        time_between_chunks: float,
        base_url: str | None = None,
        other_models: Callable[[], list[str]] | None = None,
    ):
        self.delay = time_between_chunks
        self.base_url = base_url
        self.other_models = other_models or list  # the real models to suggest, known right now

    async def list_models(self) -> list[str]:
        return [MODEL]

    async def stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        reply = compose_reply(request, self.base_url, self.other_models())
        cut = min((i for i in (reply.find(s) for s in request.stop) if i >= 0), default=-1)
        if cut >= 0:  # a stop sequence ends the text before it, as upstream models do
            reply = reply[:cut]
        tokens = _TOKEN.findall(reply)
        sent = 0
        for token in tokens:
            if sent >= request.max_tokens:
                break
            if self.delay:
                await asyncio.sleep(self.delay)
            elif sent % 32 == 0:
                await asyncio.sleep(0)  # unpaced: still let other tasks run
            yield token
            sent += 1
        text = "".join(tokens[:sent])
        yield Usage(prompt_tokens(request.messages), estimate_tokens(text))
        yield Finish("length" if sent < len(tokens) else "stop")
