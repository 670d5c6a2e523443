"""Fixtures of tests/test_store_contract.py: the services over each store implementation
(SQLite's temporary file; PostgreSQL, one database for the module), and a session given to
the store as a plain value."""

import dataclasses
from collections.abc import Iterator

import pytest

from services.container import build
from services.generations.store import SqlGenerationStore, SqliteGenerationStore
from tests.scaleout_support import Namespace, new_chat
from tests.support import make_settings

RESERVE = 8
ERROR = {"code": "interrupted", "message": "gone"}


@pytest.fixture(scope="module", name="postgres")
def store_postgres() -> Iterator[str]:  # one database for the module: each test makes its own user
    ns = Namespace("store").setup()
    assert ns.database_url is not None
    yield ns.database_url
    ns.teardown()


@pytest.fixture(name="backend", params=["sqlite", pytest.param("postgres", marks=pytest.mark.scaleout)])
def store_backend(request) -> dict:
    """The settings that pick the implementation: SQLite's temporary file, or PostgreSQL."""
    return {"database_url": request.getfixturevalue("postgres")} if request.param == "postgres" else {}


@pytest.fixture(name="services")
async def store_services(backend, tmp_path):
    api = build(make_settings(tmp_path, max_queued_per_session=3, seq_reserve=RESERVE, **backend))
    await api.start()
    assert type(api.store) is (SqlGenerationStore if backend else SqliteGenerationStore)
    yield api
    await api.stop()


@dataclasses.dataclass(frozen=True)
class Chat:  # what a send needs of its session: no ORM object reaches the store
    id: str
    model_name: str
    title: str
    user_id: str


async def chat_of(services) -> Chat:
    """A fresh user's session on the offline model."""
    chat = await new_chat(services, "offline/echo")
    return Chat(chat.id, chat.model_name, chat.title, chat.user_id)


async def done(store, generation_id: str, content: str = "Hi there") -> None:
    assert await store.finalize(
        generation_id, content=content, last_seq=2, status="completed", finish_reason="stop", usage=None
    )
