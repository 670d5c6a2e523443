"""Ending a generation whose worker died, in one place: the redelivery path (a worker gets a
job back whose generation is still `running`) and the reaper (a `running` generation whose
heartbeat went stale) both call `end_interrupted`.

The generation is ended `failed` / `interrupted` with exactly the text readers could have
seen: the stream log is sealed first (its old producer, if it is in fact alive, can no
longer add a frame), its content and last chunk seq are written to the database, and a
`done` frame with seq = last chunk seq + 1 is appended. It is never run again, since that
would repeat text. A conditional UPDATE makes one caller the winner; the others do nothing."""

import logging
from datetime import datetime

from config import Settings
from services.generations.store_protocol import GenerationStore
from services.streaming import frames
from services.streaming.log import StreamLog

log = logging.getLogger(__name__)

WORKER_LOST = {
    "code": "interrupted",
    "message": "The worker running this answer stopped; the text so far is kept. "
    "Send the message again to get a full answer.",
}


async def end_interrupted(
    settings: Settings,
    store: GenerationStore,
    stream_log: StreamLog,
    generation_id: str,
    *,
    stale_before: datetime | None = None,
    owner: str | None = None,
    why: str = "its worker is gone",
) -> bool:
    """True if this call ended the generation (it was running, and stale or run by `owner`)."""
    from_log = False

    async def sealed() -> tuple[str, int] | None:
        nonlocal from_log
        snap = await stream_log.seal(generation_id)
        from_log = snap is not None
        return snap

    ended = await store.end_interrupted(
        generation_id, error=WORKER_LOST, seal=sealed, stale_before=stale_before, owner=owner
    )
    if ended is None:
        return False
    done = frames.done(generation_id, ended.seq + 1, "failed", "interrupted", ended.usage, WORKER_LOST, ended.model)
    # If the log was lost (Redis restart), it is rebuilt from the stored text so a reader gets
    # a snapshot, then the done frame.
    await stream_log.append_ending(generation_id, done, base=None if from_log else (ended.content, ended.seq))
    await stream_log.expire(generation_id, settings.stream_log_ttl)
    log.warning("generation %s ended interrupted after chunk %d (%s)", generation_id, ended.seq, why)
    return True
