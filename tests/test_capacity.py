"""Open streams must not hold database connections: many concurrent SSE readers work with
a pool much smaller than their number."""

import asyncio

from tests.support import Server, make_settings, new_session, read_sse, register

# One user stands for many clients here: lift the per-user limits a person never meets.
LOAD = dict(user_max_running_generations=1000, user_max_open_streams=1000, user_max_queued_generations=1000)


async def test_more_streams_than_pooled_connections(tmp_path):
    server = await Server(make_settings(tmp_path, time_between_chunks=0.02, flush_interval=1.0, **LOAD)).start()
    pool = server.services.db.engine.pool
    try:
        async with server.client() as c:
            token = await register(c, "many")
        async with server.client(token) as c:
            gens = []
            for _ in range(40):  # the SQLite pool holds 5 (+10 overflow)
                sid = await new_session(c, token)
                r = await c.post("/chat", json={"session_id": sid, "message": "hi", "background": True})
                gens.append(r.json()["generation_id"])

            async def follow(gen):
                async with c.stream("GET", f"/stream/{gen}") as r:
                    return await read_sse(r)

            tasks = [asyncio.create_task(follow(g)) for g in gens]
            await asyncio.sleep(0.5)  # every stream is open and waiting on frames now
            held = []
            for _ in range(20):  # running answers flush now and then: the floor is what streams hold
                held.append(pool.checkedout())
                await asyncio.sleep(0.05)
            held = min(held)
            results = await asyncio.wait_for(asyncio.gather(*tasks), 60)
        assert all(events[-1]["type"] == "done" and events[-1]["status"] == "completed" for events in results)
        assert held <= 5, f"{held} connections held by idle streams"
    finally:
        await server.stop()


async def test_more_concurrent_chats_than_pooled_connections(tmp_path):
    """A handler must never hold a pooled connection while waiting for another (the pool
    holds 15): 40 synchronous chats at once all answer, none times out on the pool."""
    server = await Server(make_settings(tmp_path, time_between_chunks=0.01, flush_interval=1.0, **LOAD)).start()
    try:
        async with server.client() as c:
            token = await register(c, "busy")
        async with server.client(token) as c:
            sids = [await new_session(c, token) for _ in range(40)]
            replies = await asyncio.wait_for(
                asyncio.gather(*(c.post("/chat", json={"session_id": sid, "message": "hi"}) for sid in sids)), 25
            )
        assert [r.status_code for r in replies] == [200] * 40
        assert all(r.json()["status"] == "completed" for r in replies)
    finally:
        await server.stop()
