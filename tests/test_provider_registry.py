"""Provider discovery from the environment and .env, the preset table, model-name resolution,
the cached status, validation, and the one scrub function."""

import os
import time

import pytest

from config import PROVIDER_SUFFIXES, Settings
from fakeupstream import FakeUpstream
from services.errors import InvalidInput
from services.providers.anthropic_provider import AnthropicProvider
from services.providers.failures import Secrets, failure, scrub
from services.providers.openai_compat import OpenAICompatProvider
from services.providers.presets import PRESETS, discover
from services.providers.registry import ProviderRegistry
from tests.support import eventually, free_port, make_settings


@pytest.fixture(autouse=True)
def no_provider_environment(monkeypatch):
    """The runner's own provider variables stay out of these settings."""
    for name in list(os.environ):
        if name.upper().endswith(PROVIDER_SUFFIXES):
            monkeypatch.delenv(name)


def found(settings, env=None) -> dict:
    if env is not None:
        settings = settings.model_copy(update={"provider_env": {**settings.provider_env, **env}})
    return {c.name: c for c in discover(settings) if c.source != "probe"}


async def probed(settings) -> dict:
    """What the registry has once started: the configured providers and the local ones found."""
    r = ProviderRegistry.from_settings(settings)
    await r.start()
    await r.aclose()
    return r.providers


@pytest.fixture
def quiet(tmp_path):
    """Settings that read no .env and probe for no local server."""
    return make_settings(tmp_path, ollama_probe_timeout=0)


def test_presets_are_enabled_by_their_key_alone(quiet):
    env = {
        "GROQ_API_KEY": "g",
        "MISTRAL_API_KEY": "m",
        "DEEPSEEK_API_KEY": "d",
        "OPENROUTER_API_KEY": "o",
        "TOGETHER_API_KEY": "t",
        "GEMINI_API_KEY": "ge",
        "ANTHROPIC_API_KEY": "a",
        "OPENAI_API_KEY": "sk",
    }
    configs = found(quiet, env)
    assert list(configs) == ["openai", "anthropic", "groq", "mistral", "deepseek", "openrouter", "together", "gemini"]
    assert {n: c.base_url for n, c in configs.items()} == {
        "openai": None,
        "anthropic": "https://api.anthropic.com",
        "groq": "https://api.groq.com/openai/v1",
        "mistral": "https://api.mistral.ai/v1",
        "deepseek": "https://api.deepseek.com/v1",
        "openrouter": "https://openrouter.ai/api/v1",
        "together": "https://api.together.xyz/v1",
        "gemini": "https://generativelanguage.googleapis.com/v1beta/openai/",
    }
    assert configs["anthropic"].kind == "anthropic" and configs["groq"].api_key == "g"
    assert configs["openai"].max_tokens_param == "max_completion_tokens"
    assert configs["groq"].max_tokens_param == "max_tokens"
    proxied = found(quiet, {"OPENAI_API_KEY": "sk", "OPENAI_BASE_URL": "http://127.0.0.1:8080/v1"})
    assert proxied["openai"].max_tokens_param == "max_tokens"  # maybe an older compatible server


def test_base_urls_models_local_servers_and_generic_providers(quiet):
    env = {
        "GROQ_API_KEY": "g",
        "GROQ_BASE_URL": "http://proxy/v1",
        "GROQ_MODELS": " a, b ,,",
        "LLAMACPP_BASE_URL": "http://127.0.0.1:8080/v1",
        "VLLM_BASE_URL": "http://gpu:8000/v1",
        "OLLAMA_BASE_URL": "http://box:11434/v1",
        "FOO_API_KEY": "f",
        "FOO_BASE_URL": "http://foo/v1",
        "FOO_MODELS": "x",
        "LANGCHAIN_API_KEY": "unrelated",
        "OFFLINE_API_KEY": "k",
        "OFFLINE_BASE_URL": "http://no",
        "ORPHAN_BASE_URL": "http://no-key",
        "VLLM_MODELS": "m",
    }
    configs = found(quiet, env)
    assert list(configs) == ["groq", "ollama", "llamacpp", "vllm", "foo"]
    assert (configs["groq"].base_url, configs["groq"].models) == ("http://proxy/v1", ["a", "b"])
    assert configs["llamacpp"].api_key is None and configs["vllm"].models == ["m"]
    assert configs["ollama"].base_url == "http://box:11434/v1"
    foo = configs["foo"]
    assert (foo.kind, foo.base_url, foo.api_key, foo.models, foo.source) == (
        "openai-compatible",
        "http://foo/v1",
        "f",
        ["x"],
        "generic",
    )
    assert "llamacpp" not in found(quiet, {"LLAMACPP_API_KEY": "k"})  # no URL is known for it


def test_typed_settings_and_the_env_file_are_read(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("FOO_API_KEY=from-file\nFOO_BASE_URL=http://foo/v1\nBAR_API_KEY=b\nBAR_BASE_URL=http://bar\n")
    settings = Settings(_env_file=dotenv, data_dir=tmp_path, ollama_probe_timeout=0, openai_base_url="http://typed/v1")
    os.environ["BAR_API_KEY"] = "from-environment"  # removed again by no_provider_environment
    settings = Settings(_env_file=dotenv, data_dir=tmp_path, ollama_probe_timeout=0, openai_base_url="http://typed/v1")
    configs = found(settings)
    assert configs["foo"].api_key == "from-file" and configs["bar"].api_key == "from-environment"
    assert configs["openai"].base_url == "http://typed/v1"
    assert "foo" not in found(Settings(_env_file=None, data_dir=tmp_path, ollama_probe_timeout=0), {})
    hidden = Settings(_env_file=None, data_dir=tmp_path, provider_env={"X_API_KEY": "hidden-value"})
    assert "hidden-value" not in repr(hidden)


async def test_ollama_is_picked_up_when_it_answers_on_its_default_url(tmp_path):
    settings = make_settings(tmp_path, ollama_probe_timeout=0.5)
    try:
        local = FakeUpstream(models=["llama3.2:latest"], port=11434).start()
    except OSError:
        pytest.skip("port 11434 is taken (a real Ollama?)")
    try:
        r = ProviderRegistry.from_settings(settings)
        assert "ollama" not in r.providers  # building does no I/O: the probe is start()'s
        await r.start()
        try:  # Ollama answers to a name without its tag
            assert await r.validate("ollama/llama3.2") == "ollama/llama3.2"
        finally:
            await r.aclose()
        assert PRESETS["ollama"].base_url == "http://127.0.0.1:11434/v1"
    finally:
        local.stop()
    started = time.monotonic()
    assert "ollama" not in await probed(settings)  # nothing listens: refused at once
    assert time.monotonic() - started < 0.5
    assert "ollama" not in await probed(make_settings(tmp_path, ollama_probe_timeout=0))


def registry(*providers, default="offline/simulated", **kw) -> ProviderRegistry:
    from services.providers.offline import OfflineProvider

    return ProviderRegistry([OfflineProvider(0), *providers], default, **kw)


def test_split_and_qualify():
    r = registry(OpenAICompatProvider("together", "http://t/v1", "k"), default="together/some-model")
    assert r.qualify("offline/simulated") == "offline/simulated"
    assert r.qualify("llama") == "together/llama"  # a bare name: the default's provider
    assert r.qualify("meta-llama/Llama-3") == "together/meta-llama/Llama-3"  # not a provider prefix
    assert r.qualify("together/meta-llama/Llama-3") == "together/meta-llama/Llama-3"
    with pytest.raises(InvalidInput) as info:
        registry(default="nope/x").split("model")
    assert info.value.code == "unknown_model" and "offline" in info.value.detail


async def test_status_is_cached_and_a_down_provider_is_reported(fake):
    up = OpenAICompatProvider("up", fake.openai_base_url, "k", models=["extra"])
    down = AnthropicProvider("down", f"http://127.0.0.1:{free_port()}", "k", known_models=["claude-x"])
    r = registry(up, down, model_list_ttl=60, model_list_error_ttl=0.2)
    try:
        statuses = {s.name: s for s in await r.all_status()}
        assert statuses["up"].up and statuses["up"].models == ["fake-model", "fake-model-2", "extra"]
        assert not statuses["down"].up and statuses["down"].models == ["claude-x"]
        assert statuses["down"].error.startswith("down: ")
        assert await r.status("up") is statuses["up"]  # within the TTL
        assert await r.status("down") is statuses["down"]
        # failures are asked again sooner: past the error TTL, a new status
        await eventually(lambda: r.status("down"), lambda s: s is not statuses["down"], timeout=5)

        assert await r.validate("up/fake-model-2") == "up/fake-model-2"
        assert await r.validate("up/extra") == "up/extra"  # configured, not listed
        assert await r.validate("down/anything") == "down/anything"  # cannot be checked now
        with pytest.raises(InvalidInput) as info:
            await r.validate("up/gpt-17")
        assert info.value.code == "unknown_model"
        assert "available: offline/simulated, up/fake-model, up/fake-model-2, up/extra" in info.value.detail
    finally:
        await r.aclose()


def test_scrub_removes_configured_keys_and_credential_shapes():
    secrets = Secrets()
    secrets.remember("correct-horse-9f8e7d")
    secrets.remember("abc")  # too short to redact safely
    assert "correct-horse-9f8e7d" in scrub("correct-horse-9f8e7d") and "correct-horse" in Secrets().scrub(
        "correct-horse-9f8e7d"
    )  # the keys belong to one registry's Secrets, not to the process
    text = secrets.scrub(
        "key correct-horse-9f8e7d, sk-proj-AbC123xyz789, Authorization: Bearer eyJhbGciOi.x.y, "
        "x-api-key: k-123456, url ?key=AIzaSyA-0123456789abcdefghijklmnopqrstu&x=1, abc ok"
    )
    for leaked in ("correct-horse", "sk-proj", "eyJhbGciOi", "k-123456", "AIzaSy"):
        assert leaked not in text
    assert text.endswith("&x=1, abc ok") and text.count("[redacted]") == 5
    error = failure("openai", "Incorrect API key provided: sk-live-0000111122223333", "provider_auth_failed")
    assert error.detail == "openai: Incorrect API key provided: [redacted]" and not error.retryable
