"""When the fake LLM upstream says what: behaviour parsing, token plans and pacing.

The options are documented in the package's docstring (fakeupstream/__init__.py); the wire formats are in
fakeupstream/wire.py, the HTTP layer in fakeupstream/app.py.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import cycle, islice
from typing import Any, Literal
from urllib.parse import unquote

LOOP_PHRASE = "I am stuck in a loop. "
_TOKEN_RE = re.compile(r"\S+\s*|\s+")
# Unpaced streams would otherwise never give the event loop a turn while the socket buffer has room, starving
# other connections (e.g. /_fake/stats polled during a benchmark) and the disconnect listener.
_YIELD_EVERY = 64

Finish = Literal["stop", "length", "error"]
Wait = Callable[[float | None], Awaitable[None]]
"""Sleeps the given seconds (None: forever), raising Disconnected if the client goes away meanwhile."""


class BehaviourError(ValueError):
    """A behaviour option that cannot be understood."""


class Disconnected(Exception):
    """The client went away while the fake was waiting (or the fake is stopping, which ends replies alike)."""


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "tps": float,
    "ttft": float,
    "n": int,
    "stall_after": int,
    "stall": float,
    "loop": _flag,
    "error_after": int,
    "status": int,
    "fail_times": int,
    "slow_close": float,
    "text": str,
}


def split_model(model: str) -> tuple[str, dict[str, str]]:
    """Split ``base@key=value,key=value`` into the base name and its (percent-decoded) options.
    `;` separates options too, so a name fits in a comma list such as OPENAI_MODELS, which is
    how the service offers it to /set-llm."""
    base, _, spec = model.partition("@")
    options: dict[str, str] = {}
    for item in filter(None, spec.replace(";", ",").split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise BehaviourError(f"expected key=value in model name, got {item!r}")
        options[key.strip()] = unquote(value)
    return base, options


def split_tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(text)


@dataclass(frozen=True)
class Behaviour:
    """One request's behaviour. Frozen so it can key the per-behaviour fail_times counters."""

    tps: float = 0.0
    ttft: float = 0.0
    n: int = 20
    stall_after: int | None = None
    stall: float | None = None
    loop: bool = False
    error_after: int | None = None
    status: int | None = None
    fail_times: int | None = None
    slow_close: float = 0.0
    text: str | None = None

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> Behaviour:
        """Build from strings (model-name syntax) or JSON values (POST /_fake/behaviour)."""
        kwargs: dict[str, Any] = {}
        for key, raw in options.items():
            convert = _CONVERTERS.get(key)
            if convert is None:
                raise BehaviourError(f"unknown behaviour option {key!r}")
            try:
                value = convert(raw)
            except (TypeError, ValueError):
                raise BehaviourError(f"bad value for {key}: {raw!r}") from None
            if isinstance(value, float | int) and value < 0:
                raise BehaviourError(f"{key} must not be negative")
            kwargs[key] = value
        return cls(**kwargs)

    def plan(self, max_tokens: int | None) -> tuple[Iterator[str], Finish]:
        """The tokens to send (endless for loop) and how the reply ends."""
        available: int | None
        if self.loop:
            source: Iterator[str] = cycle(split_tokens(LOOP_PHRASE))
            available = None
        elif self.text is not None:
            pieces = split_tokens(self.text)
            source, available = iter(pieces), len(pieces)
        else:
            source, available = (f"t{i} " for i in range(self.n)), self.n
        limits = [x for x in (available, max_tokens, self.error_after) if x is not None]  # none if endless
        count = min(limits) if limits else None
        finish: Finish = "stop"
        if self.error_after is not None and self.error_after == count:
            finish = "error"
        elif max_tokens is not None and max_tokens == count and (available is None or max_tokens < available):
            finish = "length"
        return (source if count is None else islice(source, count)), finish

    def endless(self, max_tokens: int | None) -> bool:
        return self.loop and max_tokens is None and self.error_after is None

    async def pace(self, tokens: Iterator[str], wait: Wait) -> AsyncIterator[str]:
        """Yield tokens on schedule: the first after ttft, then one every 1/tps, stalling once if asked."""
        clock = asyncio.get_running_loop().time
        # A stall without stall_after would otherwise never fire; stalling before the first token is the useful
        # reading.
        stall_at = self.stall_after if self.stall_after is not None else (0 if self.stall is not None else None)
        interval = 1 / self.tps if self.tps else 0.0
        if self.ttft:
            await wait(self.ttft)
        # Deadlines are absolute so the rate does not drift with the time spent sending each token.
        start = clock()
        emitted = 0
        for token in tokens:
            if emitted == stall_at:
                stalled = clock()
                await wait(self.stall)
                start += clock() - stalled
            if interval:
                delay = start + emitted * interval - clock()
                if delay > 0:
                    await wait(delay)
            elif emitted % _YIELD_EVERY == _YIELD_EVERY - 1:
                await asyncio.sleep(0)
            yield token
            emitted += 1
        if emitted == stall_at:
            await wait(self.stall)
