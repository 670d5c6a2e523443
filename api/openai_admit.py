"""What a /v1 call that starts a generation is checked against before anything is stored:
the same account state, budgets and per-user limits as POST /chat and the WebSocket (each
such call opens a session of its own, so it counts as a new session too), and, when it
streams, one of the user's open-stream slots, held by the response until it ends."""

from collections.abc import Awaitable, Callable
from typing import TypeVar

from services.container import Services
from services.limits import StreamLease

T = TypeVar("T")


async def admitted(
    services: Services, user_id: str, streaming: bool, start: Callable[[], Awaitable[T]]
) -> tuple[T, StreamLease | None]:
    await services.usage.admit(user_id)
    await services.limits.check_session_create(user_id)
    await services.limits.check_generation_start(user_id, None)
    lease = await services.limits.open_stream(user_id) if streaming else None
    try:
        return await start(), lease
    except BaseException:
        if lease is not None:
            await lease.release()
        raise
