import pytest

from fakeupstream import FakeUpstream
from tests.support import Server, make_settings, register


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
