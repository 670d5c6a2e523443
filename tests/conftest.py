import sys
from pathlib import Path

import pytest

from fakeupstream import FakeUpstream
from tests.groups import GROUP_OF, GROUPS, SERVER_FIXTURES, UNIT
from tests.support import Server, make_settings, register

TESTS = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by these marks
def pytest_collection_modifyitems(config, items):
    """Marks each test with its one group (tests/groups.py): `pytest -m unit`, `-m integration`..."""
    for item in items:
        group = _group(item)
        if group == UNIT and SERVER_FIXTURES & set(item.fixturenames):
            raise pytest.UsageError(f"{item.nodeid} starts a server: it cannot be in the unit group")
        item.add_marker(group)


def _group(item) -> str:
    marked = {m.name for m in item.iter_markers() if m.name in GROUPS}
    if len(marked) > 1:
        raise pytest.UsageError(f"{item.nodeid} is marked with more than one group: {sorted(marked)}")
    if marked:
        return marked.pop()
    path = item.path.relative_to(TESTS).as_posix()
    if path not in GROUP_OF:
        raise pytest.UsageError(f"{path} is in no group: add it to tests/groups.py")
    return GROUP_OF[path]


@pytest.fixture(autouse=True)
def _close_ui_clients():
    """The browser tests' REST clients (tests/ui_support.Api), closed when their test ends."""
    yield
    ui_support = sys.modules.get("tests.ui_support")
    if ui_support is not None:
        ui_support.Api.close_all()


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path)


@pytest.fixture
async def server(settings):
    srv = await Server(settings).start()
    yield srv
    await srv.stop()


@pytest.fixture
async def client(server):
    async with server.client() as c:
        yield c


@pytest.fixture
async def token(client):
    return await register(client, "alice")


@pytest.fixture
async def auth(server, token):
    async with server.client(token) as c:
        yield c


@pytest.fixture(scope="session")
def fake_upstream():
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def fake(fake_upstream):
    import httpx

    httpx.post(f"{fake_upstream.base_url}/_fake/reset")
    return fake_upstream


@pytest.fixture
def upstream_settings(tmp_path, fake):
    """The service in front of the fake OpenAI-compatible upstream."""
    return make_settings(
        tmp_path,
        openai_base_url=fake.openai_base_url,
        openai_api_key="test-key",
        default_model="openai/fake-model",
        provider_retry_backoff=0.05,
    )


@pytest.fixture
async def upstream(upstream_settings):
    srv = await Server(upstream_settings).start()
    async with srv.client() as c:
        srv.token = await register(c, "uma")
    yield srv
    await srv.stop()


@pytest.fixture
async def up(upstream):
    async with upstream.client(upstream.token) as c:
        yield c
