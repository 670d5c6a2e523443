"""A load-generator process: `python -m bench.loadgen SPEC.json OUT.json`.

Kinds of spec:
  streams  opens one connection per stream, prints "ready", reads "go <start_at>" on stdin
           (a CLOCK_MONOTONIC time shared with the other load generators), starts stream i at
           start_at + arrivals[i] (or one after another with `sequential`), stops waiting at
           start_at + cutoff, and writes every generation's send time and frame arrival
           times to OUT.json.
  idle     opens `count` authenticated WebSockets, prints "ready", holds them until a line
           arrives on stdin, then closes them.
  stall    one WebSocket that sends a message, reads the first chunk, prints "stalled" and
           stops reading until a line arrives on stdin; then reads to the end.
Runs on uvloop when available; its own CPU time is reported so a saturated load generator
shows up in the results instead of passing for a slow service."""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from time import perf_counter

from bench.clients import SSEClient, Stream, WSClient


def _hostport(base: str) -> tuple[str, int]:
    host, port = base.split("://", 1)[-1].rstrip("/").rsplit(":", 1)
    return host, int(port)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _gather_limited(factories, limit: int):
    sem = asyncio.Semaphore(limit)

    async def one(f):
        async with sem:
            return await f()

    return await asyncio.gather(*(one(f) for f in factories))


async def _connect(spec: dict, i: int):
    mode = spec["mode"]
    if mode == "ws":
        host, port = _hostport(spec["service"])
        sid = spec["sessions"][i]
        return await WSClient(host, port, f"/ws/{sid}", spec["token"], spec.get("deflate", False)).connect()
    if mode == "sse":
        host, port = _hostport(spec["service"])
        return await SSEClient(host, port, "service", {"Authorization": f"Bearer {spec['token']}"}).connect()
    if mode in ("v1chat", "v1resp"):  # the service's OpenAI-compatible routes
        host, port = _hostport(spec["service"])
        kind = "openai" if mode == "v1chat" else "responses"
        return await SSEClient(host, port, kind, {"Authorization": f"Bearer {spec['token']}"}).connect()
    host, port = _hostport(spec["fake"])
    # the upstream takes any key; the peer (--peer litellm) its master key
    return await SSEClient(host, port, "openai", {"Authorization": f"Bearer {spec.get('token') or 'bench'}"}).connect()


def _send(spec: dict, conn, i: int, stream: Stream) -> None:
    mode = spec["mode"]
    if mode == "ws":
        conn.send_message(stream, spec.get("message", "hi"))
    elif mode == "sse":
        conn.post(
            "/chat", {"session_id": spec["sessions"][i], "message": spec.get("message", "hi"), "stream": True}, stream
        )
    elif mode == "v1chat":
        conn.post(
            "/v1/chat/completions",
            {
                "model": "openai/fake-model",
                "stream": True,
                "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": spec.get("message", "hi")}],
                "max_tokens": spec.get("max_tokens", 1024),
            },
            stream,
        )
    elif mode == "v1resp":
        conn.post(
            "/v1/responses",
            {
                "model": "openai/fake-model",
                "stream": True,
                "input": spec.get("message", "hi"),
                "max_output_tokens": spec.get("max_tokens", 1024),
            },
            stream,
        )
    else:  # what the service's SDK sends upstream, give or take the history
        conn.post(
            "/v1/chat/completions",
            {
                "model": spec.get("model", "fake-model"),
                "stream": True,
                "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": spec.get("message", "hi")}],
                "temperature": 0.7,
                "top_p": 1.0,
                "max_tokens": spec.get("max_tokens", 1024),
            },
            stream,
        )


async def run_streams(spec: dict) -> dict:
    n = len(spec["arrivals"])
    t0 = perf_counter()
    conns = await _gather_limited([lambda i=i: _connect(spec, i) for i in range(n)], 64)
    connect_s = perf_counter() - t0
    # Two-phase start: every load generator connects first, then all start on one clock.
    print("ready", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    start_at = float(line.split()[1])
    cutoff = start_at + spec["cutoff"]  # nothing is waited for past this
    sequential = spec.get("sequential", False)
    gap = spec.get("gap", 0.0)
    streams = [Stream() for _ in range(n)]
    # At most this many requests waiting for their response headers (SSE only; see README:
    # more in-flight POST /chat handlers than the DB pool can serve deadlock it).
    admission = asyncio.Semaphore(spec["admission"]) if spec.get("admission") and spec["mode"] == "sse" else None
    cpu0 = _cpu()

    async def one(i: int) -> None:
        delay = start_at + spec["arrivals"][i] - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        s = streams[i]
        fut = s.arm()
        conn = conns[i]
        if spec["mode"] != "ws":
            await conn.wait_idle()
            if conn.transport is None or conn.transport.is_closing():
                # The service closes a connection that sends no request head in time (slow-client
                # bound, api/serving.py), as it would a browser's: open a new one, as a browser does.
                await conn.connect()
        if admission is not None:
            # TTFT counts from the intended start: time queued here is the service's too.
            s.t_send = perf_counter()
            try:
                await asyncio.wait_for(admission.acquire(), max(0.001, cutoff - time.monotonic()))
            except TimeoutError:
                s.finish(perf_counter(), "cutoff", "still queued for admission at the cutoff")
                return
            released = []

            def release():
                if not released:
                    released.append(1)
                    admission.release()

            conn.on_headers = release
        _send(spec, conns[i], i, s)
        try:
            await asyncio.wait_for(fut, max(0.001, cutoff - time.monotonic()))
        except TimeoutError:
            s.finish(perf_counter(), "cutoff", "not done by the cutoff")

    t0 = perf_counter()
    if sequential:  # one stream at a time, each on its own fresh connection and session
        for i in range(n):
            await one(i)
            if gap:
                await asyncio.sleep(gap)
    else:
        await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = perf_counter() - t0
    cpu = _cpu() - cpu0
    for c in conns:
        c.close()
    gens = []
    for i, s in enumerate(streams):
        rec = {
            "stream": i,
            "t_send": s.t_send,
            "done": s.done,
            "status": s.status,
            "generation_id": s.generation_id,
            "times": [round(t - s.t_send, 7) for t in s.times],
        }
        if any(c != 1 for c in s.counts):
            rec["counts"] = s.counts
        if s.error:
            rec["error"] = s.error[:300]
        gens.append(rec)
    return {"generations": gens, "loadgen_cpu_s": cpu, "elapsed_s": elapsed, "connect_s": connect_s}


async def run_idle(spec: dict) -> dict:
    host, port = _hostport(spec["service"])
    sessions, count = spec["sessions"], spec["count"]
    failures: list[str] = []

    async def one(i: int):
        try:
            return await WSClient(
                host, port, f"/ws/{sessions[i % len(sessions)]}", spec["token"], spec.get("deflate", False)
            ).connect()
        except Exception as exc:  # counted and reported, not fatal
            failures.append(f"{type(exc).__name__}: {exc}"[:200])
            return None

    t0 = perf_counter()
    conns = [c for c in await _gather_limited([lambda i=i: one(i) for i in range(count)], 32) if c]
    connect_s = perf_counter() - t0
    # Each socket proves it is live and authenticated: a ping frame answered by pong.
    print(f"ready {len(conns)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    alive = sum(1 for c in conns if not c.closed.done())
    for c in conns:
        c.close()
    await asyncio.sleep(0.2)
    return {
        "connected": len(conns),
        "alive_at_end": alive,
        "failures": failures[:10],
        "failed": len(failures),
        "connect_s": connect_s,
    }


async def run_stall(spec: dict) -> dict:
    host, port = _hostport(spec["service"])
    conn = await WSClient(host, port, f"/ws/{spec['sessions'][0]}", spec["token"]).connect()
    s = Stream()
    fut = s.arm()
    conn.send_message(s, "stall")
    while not s.times and not fut.done():
        await asyncio.sleep(0.001)
    if spec.get("stall", True):
        conn.pause()
    print(f"stalled {s.generation_id}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    conn.resume()
    try:
        await asyncio.wait_for(fut, spec.get("timeout", 120))
    except TimeoutError:
        s.finish(perf_counter(), "timeout", "no done frame")
    conn.close()
    return {"status": s.status, "frames": len(s.times), "tokens": s.tokens(), "error": s.error}


async def run_cancel(spec: dict) -> dict:
    """Cancels generations over one WebSocket (any of the user's sessions will do): cancel
    frames cost the service no request handler and hold no DB session while waiting."""
    host, port = _hostport(spec["service"])
    conn = await WSClient(host, port, f"/ws/{spec['sessions'][0]}", spec["token"]).connect()
    for gid in spec["generation_ids"]:
        conn._send(1, json.dumps({"type": "cancel", "generation_id": gid}).encode())
    await asyncio.sleep(spec.get("linger", 1.0))  # the cancels run as tasks; closing does not stop them
    conn.close()
    return {"sent": len(spec["generation_ids"])}


async def main(spec_path: str, out_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    kind = spec.get("kind", "streams")
    result = await {"streams": run_streams, "idle": run_idle, "stall": run_stall, "cancel": run_cancel}[kind](spec)
    with open(out_path, "w") as f:
        json.dump(result, f, separators=(",", ":"))


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(sys.argv[1], sys.argv[2]))
    else:
        uvloop.run(main(sys.argv[1], sys.argv[2]))
