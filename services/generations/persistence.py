"""The runner's writes: while answers stream, the periodic flush of their text (also their
heartbeat) and the reservation of the seqs they may send beyond what is stored; at the end,
the final row, the done frame and the generation-end hook."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from config import Settings
from services.generations.state import ENDINGS, GenerationState
from services.generations.store import GenerationStore
from services.json_types import JSONObject
from services.observability.generation import Ended
from services.providers.base import ChatRequest, Usage, estimate_tokens, prompt_tokens
from services.streaming import frames
from services.streaming.log import StreamLog

log = logging.getLogger(__name__)


class Persistence:
    """Mixed into GenerationRunner: uses its settings `s`, `store`, `log`, `running` states
    and `ended` hook."""

    s: Settings
    store: GenerationStore
    log: StreamLog
    running: dict[str, GenerationState]
    ended: Callable[[Ended], Awaitable[None]] | None

    async def _flush_loop(self) -> None:
        """Every interval, the text of every running answer in one transaction. The write
        doubles as the heartbeat that tells other processes an answer is alive, so answers
        with no new text are written too."""
        while True:
            await asyncio.sleep(self.s.flush_interval)
            states = list(self.running.values())
            dirty = [st for st in states if st.seq != st.flushed]
            changed = [
                (st.generation_id, st.content(), st.seq, max(st.reserved, st.seq + self.s.seq_reserve)) for st in dirty
            ]
            unchanged = [st.generation_id for st in states if st.seq == st.flushed]
            try:
                await self.store.flush(changed, unchanged)
            except Exception:
                log.warning("flushing %d running answer(s) failed; retrying next interval", len(states))
                continue
            for st, (_, _, seq, reserved) in zip(dirty, changed, strict=True):  # one tuple per dirty state
                st.flushed, st.reserved = seq, max(st.reserved, reserved)

    async def _reserve(self, state: GenerationState) -> None:
        """A producer faster than SEQ_RESERVE chunks per flush waits for its bound to be
        stored before it sends past it: after a crash, the done frame is placed above the
        stored bound, so it must cover every seq that went out."""
        bound = state.seq + 1 + self.s.seq_reserve  # room for the token being handled
        while True:
            try:
                await self.store.reserve(state.generation_id, bound)
            except Exception as exc:  # the database is down: the watchdog ends the answer meanwhile
                log.warning("reserving seqs of %s failed (%s); retrying", state.generation_id, type(exc).__name__)
                await asyncio.sleep(min(self.s.flush_interval, 1.0))
                continue
            state.reserved = max(state.reserved, bound)
            return

    async def _finalize(
        self, state: GenerationState, ending: str, error: JSONObject | None, request: ChatRequest
    ) -> None:
        status, finish_reason = ENDINGS[ending]
        content = state.content()
        # The provider reported none: counted here, and said so (PROTOCOL.md).
        usage = (
            state.usage.as_dict()
            if state.usage
            else {**Usage(prompt_tokens(request.messages), estimate_tokens(content)).as_dict(), "estimated": True}
        )
        done_seq = state.seq + 1
        try:
            await self.store.finalize(
                state.generation_id,
                content=content,
                last_seq=done_seq,
                status=status,
                finish_reason=finish_reason,
                usage=usage,
                error=error,
                model=state.model,
            )
        except Exception:
            log.exception("could not store the end of generation %s", state.generation_id)
        await self.log.append(
            state.generation_id,
            frames.done(state.generation_id, done_seq, status, finish_reason, usage, error, state.model),
        )
        await self.log.expire(state.generation_id, self.s.stream_log_ttl)
        if self.ended is not None:
            await self.ended(Ended(state, ending, status, finish_reason, usage, error, content))
