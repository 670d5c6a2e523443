"""The runner's writes while answers stream: the periodic flush of their text (also their
heartbeat) and the reservation of the seqs they may send beyond what is stored."""

import asyncio
import logging

log = logging.getLogger(__name__)


class Persistence:
    """Mixed into GenerationRunner: uses its settings `s`, `store` and `running` states."""

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
            for st, (_, _, seq, reserved) in zip(dirty, changed):
                st.flushed, st.reserved = seq, max(st.reserved, reserved)

    async def _reserve(self, state) -> None:
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
