"""Client-side cost of reading an upstream token stream, per token, in this process:
the part of the service's per-token CPU that lives in services/providers.

    .venv/bin/python -m bench.upstream_client [--tokens 20000] [--streams 20] [--tps 0] [--fake URL]

Variants, each reading the same fake-upstream streams (unpaced, or paced with --tps) and
reporting this process's CPU microseconds per token:
  sdk-httpx      the openai SDK's typical use (AsyncOpenAI over httpx2, per-chunk models)
  sdk-aiohttp    the same SDK with http_client=DefaultAioHttpClient() (needs openai[aiohttp];
                 reported as unavailable otherwise)
  raw-httpx      httpx2 streaming + a minimal SSE split + json.loads, no SDK models
  service-httpx / service-aiohttp
                 the service's own provider (services/providers/openai_compat.py), request
                 included, over each PROVIDER_HTTP_TRANSPORT
  raw-aiohttp    aiohttp directly, no SDK
  raw-protocol   an asyncio.Protocol reading the chunked SSE (bench/clients.py), the floor

With no --fake, starts the fake upstream in a child process pinned to another core."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


MESSAGES = [{"role": "user", "content": "hi"}]


async def _sdk(base: str, streams: int, http_client=None) -> int:
    import openai

    client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="bench", max_retries=0, http_client=http_client)

    async def one() -> int:
        n = 0
        stream = await client.chat.completions.create(
            model="fake-model", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        async with stream:
            async for chunk in stream:
                for choice in chunk.choices:
                    if choice.delta and choice.delta.content:
                        n += 1
        return n

    try:
        return sum(await asyncio.gather(*(one() for _ in range(streams))))
    finally:
        await client.close()


async def _raw_httpx(base: str, streams: int) -> int:
    import httpx2

    body = {"model": "fake-model", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    async with httpx2.AsyncClient(timeout=60) as client:

        async def one() -> int:
            n = 0
            async with client.stream("POST", f"{base}/v1/chat/completions", json=body) as r:
                buf = b""
                async for data in r.aiter_bytes():
                    buf += data
                    *events, buf = buf.split(b"\n\n")
                    for ev in events:
                        if ev.startswith(b"data: {"):
                            for choice in json.loads(ev[6:]).get("choices") or ():
                                if (choice.get("delta") or {}).get("content"):
                                    n += 1
            return n

        return sum(await asyncio.gather(*(one() for _ in range(streams))))


async def _service(base: str, streams: int, transport: str) -> int:
    """The service's own provider (services/providers/openai_compat.py) with either transport."""
    from services.providers.base import ChatRequest
    from services.providers.openai_compat import OpenAICompatProvider

    provider = OpenAICompatProvider("bench", f"{base}/v1", "bench", transport=transport)
    request = ChatRequest("fake-model", MESSAGES, 1.0, 1 << 20, 1.0)

    async def one() -> int:
        return sum([1 async for ev in provider.stream(request) if type(ev) is str])

    try:
        return sum(await asyncio.gather(*(one() for _ in range(streams))))
    finally:
        await provider.aclose()


async def _raw_aiohttp(base: str, streams: int) -> int:
    import aiohttp

    body = {"model": "fake-model", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    async with aiohttp.ClientSession() as client:

        async def one() -> int:
            n = 0
            async with client.post(f"{base}/v1/chat/completions", json=body) as r:
                async for line in r.content:
                    if line.startswith(b"data: {"):
                        for choice in json.loads(line[6:]).get("choices") or ():
                            if (choice.get("delta") or {}).get("content"):
                                n += 1
            return n

        return sum(await asyncio.gather(*(one() for _ in range(streams))))


async def _raw_protocol(base: str, streams: int) -> int:
    from bench.clients import SSEClient, Stream

    host, port = base.split("://")[1].rsplit(":", 1)

    async def one() -> int:
        c = await SSEClient(host, int(port), "openai").connect()
        s = Stream()
        fut = s.arm()
        c.post("/v1/chat/completions", {"model": "fake-model", "messages": MESSAGES, "stream": True}, s)
        await fut
        c.close()
        return s.tokens()

    return sum(await asyncio.gather(*(one() for _ in range(streams))))


async def measure(base: str, tokens: int, streams: int, rounds: int = 3, tps: float = 0) -> dict:
    from bench.proc import http_json

    per = max(1, tokens // streams)
    variants = {
        "sdk-httpx": lambda: _sdk(base, streams),
        "raw-httpx": lambda: _raw_httpx(base, streams),
        "service-httpx": lambda: _service(base, streams, "httpx"),
        "service-aiohttp": lambda: _service(base, streams, "aiohttp"),
        "raw-aiohttp": lambda: _raw_aiohttp(base, streams),
        "raw-protocol": lambda: _raw_protocol(base, streams),
    }
    try:
        import openai

        if (
            openai.DefaultAioHttpClient.__name__.startswith("_Missing")
            or "Missing" in type(openai.DefaultAioHttpClient).__name__
        ):
            raise ImportError
        import aiohttp  # noqa: F401

        variants["sdk-aiohttp"] = lambda: _sdk(base, streams, openai.DefaultAioHttpClient())
    except ImportError:
        pass
    http_json("POST", f"{base}/_fake/behaviour", {"n": 50, "tps": 0})
    for fn in variants.values():  # warm-up: imports, lazy model schemas, connection pools
        await fn()
    http_json("POST", f"{base}/_fake/behaviour", {"n": per, "tps": tps})
    runs: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for name, fn in variants.items():  # interleaved rounds
            c0 = _cpu()
            got = await fn()
            runs[name].append((_cpu() - c0) / max(got, 1) * 1e6)
    out = {name: {"us_per_token": sorted(v)[len(v) // 2], "runs": [round(x, 1) for x in v]} for name, v in runs.items()}
    if "sdk-aiohttp" not in out:
        out["sdk-aiohttp"] = {"us_per_token": None, "note": "aiohttp not installed (pip install 'openai[aiohttp]')"}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=20000)
    ap.add_argument("--streams", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fake", default=None)
    ap.add_argument("--tps", type=float, default=0, help="pace each stream (0 = unpaced: many tokens per read)")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.proc import cores, start_fake

    fake = None
    base = args.fake
    cpus = cores()
    if base is None:
        fake, base = start_fake(
            Path(tempfile.mkdtemp(prefix="bench-upstream-")), {cpus[-1]} if len(cpus) > 1 else None, ["fake-model"]
        )
    if len(cpus) > 1:
        os.sched_setaffinity(0, {cpus[0]})
    try:
        t0 = time.perf_counter()
        try:
            import uvloop  # the service's loop (uvicorn[standard])

            run = uvloop.run
        except ImportError:
            run = asyncio.run
        result = run(measure(base, args.tokens, args.streams, args.rounds, args.tps))
        result["_elapsed_s"] = round(time.perf_counter() - t0, 2)
        print(json.dumps(result, indent=1))
    finally:
        if fake:
            fake.stop()


if __name__ == "__main__":
    main()
