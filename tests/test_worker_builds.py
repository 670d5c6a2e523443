"""The scale-out worker builds only what it uses (issue 18, point 4): the database, the
providers, the Redis stream log, the store, usage, one runner, the dispatch, the reaper
and the leases; no token config or secret key, no session service, login limiter, API keys
or second runner. So it starts with a SECRET_KEY the API would refuse, and writes no
generated key into its data directory."""

import asyncio
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from auth.security import TokenConfig
from config import Settings
from services.api_keys import ApiKeyService
from services.chat_sessions import SessionService
from services.container import Services, build
from services.generations.runner import GenerationRunner
from services.generations.service import GenerationService
from services.limits import Limits
from services.streaming.frames import Frame
from tests.scaleout_support import RABBITMQ_URL, REDIS_URL, SECRET, Namespace, new_chat
from tests.support import make_settings

WEAK_KEY = "dev"  # the API refuses it (config.check_secret_key)
NOT_BUILT = (TokenConfig, SessionService, Limits, ApiKeyService, GenerationService, Services)


def reachable(root: object, depth: int = 3) -> list[object]:
    """The objects held by `root`'s attributes, `depth` levels down."""
    seen: dict[int, object] = {}
    todo = [(root, 0)]
    while todo:
        obj, level = todo.pop()
        if id(obj) in seen or level > depth:
            continue
        seen[id(obj)] = obj
        held = vars(obj).values() if hasattr(obj, "__dict__") else ()
        todo.extend((value, level + 1) for value in held)
    return list(seen.values())


def worker_settings(fake: Any, ns: Namespace, tmp_path: Path, **values: Any) -> Settings:
    return make_settings(
        tmp_path,
        openai_base_url=fake.openai_base_url,
        openai_api_key="test-key",
        default_model="openai/fake-model",
        database_url=ns.database_url,
        redis_url=REDIS_URL,
        rabbitmq_url=RABBITMQ_URL,
        redis_key_prefix=ns.prefix,
        rabbitmq_queue=ns.queue,
        **values,
    )


async def test_the_worker_holds_no_api_side_service_and_one_runner(fake_upstream: Any, tmp_path: Path) -> None:
    from services.scaleout.worker import Worker

    ns = Namespace("builds")  # not created: building connects to nothing
    ns.database_url = "postgresql://postgres@127.0.0.1:5432/unused"
    worker = Worker(worker_settings(fake_upstream, ns, tmp_path, secret_key=WEAK_KEY), worker_id="builds-1")
    try:
        assert {f.name for f in dataclasses.fields(worker.core)} == {
            "settings",
            "db",
            "providers",
            "log",
            "store",
            "usage",
            "titles",
        }  # the runner's end hook asks for a first answer's title
        held = reachable(worker)
        assert not [type(obj).__name__ for obj in held if isinstance(obj, NOT_BUILT)]
        assert sum(isinstance(obj, GenerationRunner) for obj in held) == 1
        with pytest.raises(ValueError, match="SECRET_KEY"):  # what the API would say about it
            build(worker_settings(fake_upstream, ns, tmp_path, secret_key=WEAK_KEY))
    finally:
        await worker.core.aclose()


async def test_a_worker_without_a_usable_secret_key_runs_generations(fake_upstream: Any, tmp_path: Path) -> None:
    from services.scaleout.worker import Worker

    ns = await Namespace("builds").acreate()
    httpx.post(f"{fake_upstream.base_url}/_fake/reset")
    api_settings = worker_settings(fake_upstream, ns, tmp_path / "api", secret_key=SECRET)
    api = build(api_settings)
    await api.start()
    worker_dir = tmp_path / "worker"
    worker = Worker(worker_settings(fake_upstream, ns, worker_dir, secret_key=WEAK_KEY), worker_id="builds-2")
    await worker.start()
    try:
        chat = await new_chat(api, "openai/fake-model@tps=200,n=5")
        accepted = await api.generations.submit(chat, "hello")
        got: list[dict[str, Any]] = []

        async def send(batch: Sequence[Frame]) -> None:  # as the transports relay
            got.extend(json.loads(frame.data) for frame in batch)

        async with asyncio.timeout(20):
            assert await api.generations.relay(accepted.generation_id, 0, send)
        assert got[-1]["status"] == "completed" and len(got) == 6
        assert (await api.store.get(accepted.generation_id)).worker_id == "builds-2"
        assert not (worker_dir / "data" / "secret_key").exists()  # none generated either
    finally:
        await worker.shutdown()
        await api.stop()
        await ns.adestroy()
