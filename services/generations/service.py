"""The generation facade used by every transport: submit, cancel, look up, follow."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from config import Settings
from models.db import ChatSession
from services.errors import NotFound
from services.generations.dispatch import JobDispatch
from services.generations.readers import Readers
from services.generations.store_protocol import ActiveCheck, GenerationRow, GenerationStore, Turn
from services.generations.views import generation_view, stored_frames
from services.json_types import JSONObject
from services.observability import TRANSPORT, metrics, tracing
from services.streaming import frames
from services.streaming.frames import Frame
from services.streaming.log import StreamLog
from services.streaming.push import Pusher, Send

Check = ActiveCheck  # the limits' check of the user's active answers, in the send's transaction
# Stores a turn (and whatever goes with it, in one transaction), given the worker id it may
# be claimed for at once (JobDispatch.claimer); returns the Turn.
CreateTurn = Callable[[str | None], Awaitable[Turn]]


@dataclass
class Accepted:
    session_id: str
    generation_id: str
    position: int
    client_msg_id: str | None
    created: bool

    def frame(self) -> str:
        return frames.accepted(self.session_id, self.generation_id, self.position, self.client_msg_id)


class GenerationService:
    def __init__(self, settings: Settings, store: GenerationStore, log: StreamLog, dispatch: JobDispatch):
        self.s = settings
        self.store = store
        self.log = log
        self.dispatch = dispatch
        self.closing = asyncio.Event()  # set when the server is going away
        self.readers = Readers()  # the transports relaying right now (api/lifecycle.py waits on them)

    def close(self) -> None:
        """Readers stop following (their clients resume elsewhere with their last seq)."""
        self.closing.set()
        self.log.wake_all()

    async def submit(self, chat: ChatSession, text: str, client_msg_id: str | None = None) -> Accepted:
        # Shielded: once the turn is stored (maybe already claimed), it must reach the
        # dispatcher even if the caller is cancelled meanwhile, or it would never run.
        return await asyncio.shield(
            self._submit(
                chat.id,
                lambda claim_for: self.store.create_turn(chat, text, client_msg_id, claim_for=claim_for),
                client_msg_id,
            )
        )

    async def submit_owned(
        self, user_id: str, session_id: str, text: str, client_msg_id: str | None = None, check: Check | None = None
    ) -> Accepted:
        """`submit` into a session given by id, checking in the same transaction that the user
        owns it (NotFound otherwise), after `check(active)` (the limits' count, whose refusal
        stores nothing): one database round trip before the first token, not three."""
        return await asyncio.shield(
            self._submit(
                session_id,
                lambda claim_for: self.store.create_owned_turn(
                    user_id, session_id, text, client_msg_id, claim_for=claim_for, check=check
                ),
                client_msg_id,
            )
        )

    async def submit_with(self, session_id: str, create: CreateTurn) -> Accepted:
        """`submit` where the caller stores the turn: `create(claim_for)` writes it (and
        whatever must be written with it, in the same transaction) and returns its Turn."""
        return await asyncio.shield(self._submit(session_id, create, None))

    async def _submit(self, session_id: str, create: CreateTurn, client_msg_id: str | None) -> Accepted:
        turn = await create(self.dispatch.claimer(session_id))
        if turn.created:
            tracing.capture(turn.generation_id)
            await self.log.create(turn.generation_id)
            await self.dispatch.submit(session_id, turn.generation_id, turn.job)
        return Accepted(session_id, turn.generation_id, turn.position, client_msg_id, turn.created)

    async def cancel(self, generation_id: str, user_id: str) -> GenerationRow:
        """Stops a queued or running generation; on a finished one, changes nothing."""
        gen = await self.store.get(generation_id, user_id)
        if gen.status == "queued" and await self.store.finalize(
            gen.id,
            content=None,
            last_seq=1,
            status="cancelled",
            finish_reason="cancelled",
            usage={"prompt_tokens": 0, "completion_tokens": 0},
            only_if=("queued",),
        ):
            await self.log.append(gen.id, frames.done(gen.id, 1, "cancelled", "cancelled", None))
            await self.log.expire(gen.id, self.s.stream_log_ttl)
        elif gen.status in ("queued", "running"):
            await self.dispatch.cancel(gen.id)
            await self.wait_done(gen.id, timeout=5.0)
        return await self.store.get(generation_id, user_id)

    async def wait_done(self, generation_id: str, timeout: float | None = None) -> None:
        """Until the generation's done frame (or the server going away). A relay that drops
        what it is sent: once caught up, the log wakes it only for the done frame instead of
        for every token of an answer whose text it does not need."""
        try:
            await asyncio.wait_for(self._relay(generation_id, 0, Pusher(_discard, only_done=True), None), timeout)
        except TimeoutError:
            pass

    async def relay(
        self, generation_id: str, after: int, send: Send, ping: Callable[[], Awaitable[None]] | None = None
    ) -> bool:
        """Sends the frames with seq > after, then live ones until `done`, to `send`, in
        batches, always from the calling task: pulled from the log while behind, pushed into
        a buffer by the log once caught up (see streaming/push.py). `ping()` after every
        SSE_PING_INTERVAL of silence. True once the done frame went out; False when the
        server is going away first."""
        return await self._relay(generation_id, after, Pusher(send), ping)

    async def _relay(
        self, generation_id: str, after: int, pusher: Pusher, ping: Callable[[], Awaitable[None]] | None
    ) -> bool:
        send, transport = pusher.send, TRANSPORT.get()
        if after:
            metrics.RESUMES.labels(transport).inc()
        readers = metrics.READERS_OPEN.labels(transport)
        readers.inc()
        try:
            async for batch in self.follow(generation_id, after, pusher=pusher):
                if batch is None:
                    if ping is not None:
                        await ping()
                else:
                    await send(batch)
                    if batch[-1].type == "done":
                        return True
            return pusher.finished
        finally:
            readers.dec()

    async def follow(
        self, generation_id: str, after: int, ping_interval: float | None = None, pusher: Pusher | None = None
    ) -> AsyncIterator[list[Frame] | None]:
        """Frames with seq > after, then live ones until `done`, as the batches one wake of
        the log found, so a transport can send a batch in one write. A snapshot replaces
        frames that are no longer kept. Yields None every `ping_interval` seconds of silence.
        With a `pusher`, on a log that pushes, frames arriving while the reader is caught up
        go to the pusher's send instead (still in this task); the generator ends without
        yielding a done frame sent that way."""
        ping_interval = ping_interval or self.s.sse_ping_interval
        log, closing = self.log, self.closing
        while not closing.is_set():
            result = await log.read(generation_id, after)
            if result is None:  # not in the log (expired or lost): the database has it
                row = await self.store.get(generation_id)
                if row.status in frames.TERMINAL:
                    rebuilt = stored_frames(row, after)
                    if rebuilt and rebuilt[0].type == "snapshot":
                        metrics.SNAPSHOTS.inc()
                    if rebuilt:
                        yield rebuilt
                    return
                if not await log.wait(generation_id, after, ping_interval):
                    await asyncio.sleep(min(ping_interval, 1.0))  # log missing: poll the DB
                continue
            if result.gap:
                snap = await log.snapshot(generation_id)
                if snap is not None and snap[1] > after:
                    content, seq = snap
                    row = await self.store.get(generation_id)
                    metrics.SNAPSHOTS.inc()
                    yield [frames.snapshot(generation_id, seq, content, row.status)]
                    after = seq
                    continue
            if result.frames:  # a done frame is always the last one of the log
                yield result.frames
                after = result.frames[-1].seq
                if result.frames[-1].type == "done":
                    return
            if result.finished:  # resumed after the done frame: nothing more will come
                return
            if pusher is not None and log.attach(generation_id, after, pusher.rearm(after)):
                try:
                    quiet = await pusher.deliver(ping_interval)
                finally:
                    log.detach(generation_id, pusher)
                after = pusher.seq
                if pusher.finished:
                    return
                if quiet and not closing.is_set():
                    yield None
                continue
            # Straight to waiting, also after delivering frames: wait() returns at once when
            # more are already in, so a live reader does one read per wake, not two.
            if not await log.wait(generation_id, after, ping_interval) and not closing.is_set():
                yield None

    # Lookups for the transports, so that routers ask this facade, not the store or the log.

    async def get(self, generation_id: str, user_id: str | None = None) -> GenerationRow:
        """The generation (of this user, when given), or NotFound."""
        return await self.store.get(generation_id, user_id)

    async def describe(self, row: GenerationRow) -> JSONObject:
        """The generation as GET /generations/{id} shows it: a running one with the text the
        log has, which is ahead of the last flush."""
        view = generation_view(row)
        if row.status in ("queued", "running"):
            snap = await self.log.snapshot(row.id)
            if snap is not None and snap[1] >= row.last_seq:
                view["content"], view["last_seq"] = snap
        return view

    async def latest_in_session(self, session_id: str) -> GenerationRow:
        """The session's newest generation, or NotFound (the caller checked the session's owner)."""
        row = await self.store.latest(session_id)
        if row is None:
            raise NotFound(f"session {session_id} has no generation yet", code="generation_not_found")
        return row

    async def active_in_session(self, session_id: str) -> list[str]:
        """Ids of the session's queued and running generations, oldest first."""
        return await self.store.active_in_session(session_id)


async def _discard(batch: Sequence[Frame]) -> None:
    return None
