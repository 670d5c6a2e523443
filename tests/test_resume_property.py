"""Property: whatever the interleaving of chunks, disconnects and resumes, a reader that
resumes from its last seq ends with exactly the stored content (PROTOCOL.md, Frames)."""

import asyncio
import json

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from models.schemas import SetLLM
from services.container import build
from services.users import create_user
from tests.support import make_settings

# (frames to read before dropping the connection, ms to stay away before resuming)
visits = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 15)), min_size=1, max_size=12)


class Gone(Exception):
    """The client went away."""


class World:
    """One service instance (offline model, tiny log so snapshots happen) for all examples."""

    def __init__(self, tmp_path):
        self.loop = asyncio.new_event_loop()
        self.services = build(make_settings(tmp_path, time_between_chunks=0.0005, stream_log_max_frames=16))
        self.loop.run_until_complete(self._setup())

    async def _setup(self):
        await self.services.start()
        async with self.services.db.sessionmaker() as db:
            user = await create_user(db, "prop", "property-password")
            self.chat = await self.services.sessions.create(db, user.id, SetLLM())

    async def scenario(self, plan, message: str) -> tuple[str, str]:
        gen = (await self.services.generations.submit(self.chat, message)).generation_id
        text, last = "", 0
        for reads, away_ms in plan + [(10**9, 0)]:  # the last visit stays to the end
            seen = 0

            async def send(batch, reads=reads) -> None:  # a transport's send, via the relay they all use
                nonlocal text, last, seen
                for frame in batch:
                    body = json.loads(frame.data)
                    assert body["seq"] == frame.seq
                    if frame.type == "snapshot":
                        assert frame.seq >= last
                        text, last = body["content"], frame.seq
                    elif frame.type == "chunk":
                        assert frame.seq == last + 1, "gap or repeat"
                        text, last = text + body["chunk"], frame.seq
                    else:
                        assert frame.type == "done" and frame.seq == last + 1
                        return
                    seen += 1
                    if seen >= reads:
                        raise Gone  # the connection drops mid-batch, as a socket's send raises

            try:
                if await self.services.generations.relay(gen, last, send):
                    return text, (await self.services.store.get(gen)).content
            except Gone:
                pass
            await asyncio.sleep(away_ms / 1000)
        raise AssertionError("never saw done")

    def close(self):
        self.loop.run_until_complete(self.services.stop())
        self.loop.close()


def test_any_interleaving_reassembles_the_stored_content(tmp_path):
    world = World(tmp_path)
    try:

        @hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(plan=visits, message=st.text(min_size=1, max_size=60).filter(str.strip))
        def check(plan, message):
            text, stored = world.loop.run_until_complete(world.scenario(plan, message))
            assert text == stored and stored

        check()
    finally:
        world.close()
