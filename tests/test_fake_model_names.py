"""The fake upstream's behaviour-in-the-model-name (`fake-model@tps=50;n=3`) through the
service: /set-llm accepts such a name once OPENAI_MODELS offers it (options separated by `;`,
since that variable is a comma list), and the session's answers follow its options; a name
the service does not offer is refused as an unknown model."""

from tests.test_providers import ask, behave, openai_env, serve

NAME = "fake-model@n=3;ttft=0"


async def test_a_fake_model_name_with_options_is_a_model_of_the_service(tmp_path, fake):
    env = openai_env(fake, OPENAI_MODELS=f"{NAME},fake-model@n=2")
    async with serve(tmp_path, env, default_model="openai/fake-model") as c:
        await behave(fake, n=50)  # what a plain fake-model would answer
        ids = [m["id"] for m in (await c.get("/models")).json()["data"]]
        assert f"openai/{NAME}" in ids and "openai/fake-model@n=2" in ids
        r = await c.post("/set-llm", json={"model_name": f"openai/{NAME}"})
        assert r.status_code == 201, r.text
        text, done = await ask(c, r.json()["session_id"])
        assert text == "t0 t1 t2 " and done["model"] == f"openai/{NAME}" and done["status"] == "completed"


async def test_a_name_the_service_does_not_offer_is_unknown(tmp_path, fake):
    async with serve(tmp_path, openai_env(fake), default_model="openai/fake-model") as c:
        r = await c.post("/set-llm", json={"model_name": "openai/fake-model@tps=50,ttft=0.2"})
        assert r.status_code == 422 and r.json()["code"] == "unknown_model"
