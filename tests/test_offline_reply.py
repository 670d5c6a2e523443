"""The offline model's reply tells how to pick a real model with what this service really
has: its own address (PUBLIC_BASE_URL, or a placeholder), and a model it offers, or none."""

import re

from tests.test_providers import ask, behave, openai_env, serve


def suggested_model(text: str) -> str | None:
    found = re.search(r'"model_name": "([^"]+)"', text)
    return found and found.group(1)


async def test_with_no_other_provider_nothing_is_suggested_and_no_address_guessed(tmp_path):
    async with serve(tmp_path) as c:
        sid = (await c.post("/set-llm", json={})).json()["session_id"]
        text, done = await ask(c, sid)
    assert done["model"] == "offline/simulated" and done["status"] == "completed"
    assert "No other model is configured" in text and suggested_model(text) is None
    assert "127.0.0.1:8000" not in text and "`GET $BASE/models`" in text


async def test_suggests_a_model_the_service_offers_at_its_public_address(tmp_path, fake):
    env = openai_env(fake, OPENAI_MODELS="extra-model")
    async with serve(tmp_path, env, public_base_url="https://chat.internal:9443/") as c:
        await behave(fake, n=3)
        sid = (await c.post("/set-llm", json={"model_name": "offline/simulated"})).json()["session_id"]
        before, _ = await ask(c, sid)  # no listing yet: the configured model
        assert suggested_model(before) == "openai/extra-model"
        await c.get("/models")  # the provider's own list is known now
        text, _ = await ask(c, sid)
        assert "curl -X POST https://chat.internal:9443/set-llm" in text and "$BASE" not in text
        model = suggested_model(text)
        assert model == "openai/fake-model"
        r = await c.post("/set-llm", json={"model_name": model})  # the suggestion is a real choice
        assert r.status_code == 201, r.text
