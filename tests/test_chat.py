"""POST /chat (synchronous), context, errors and limits (PROTOCOL.md, Chat and Errors)."""

import httpx

from tests.support import new_session


async def behave(fake, **options):
    async with httpx.AsyncClient() as c:
        await c.post(f"{fake.base_url}/_fake/behaviour", json=options)


async def test_sync_chat_answers_and_stores_both_messages(auth, token):
    sid = await new_session(auth, token)
    r = await auth.post("/chat", json={"session_id": sid, "message": "What is 2+2?"})
    assert r.status_code == 200
    body = r.json()
    assert {"session_id", "generation_id", "response", "status", "finish_reason", "usage"} <= set(body)
    assert body["status"] == "completed" and body["finish_reason"] == "stop" and "What is 2+2?" in body["response"]
    assert body["usage"]["completion_tokens"] > 0
    history = (await auth.get(f"/sessions/{sid}")).json()["history"]
    assert [(m["role"], m["status"]) for m in history] == [("user", "completed"), ("assistant", "completed")]
    assert history[1]["content"] == body["response"] and history[1]["id"] == body["generation_id"]
    assert history[0]["generation_id"] == body["generation_id"]


async def test_history_is_sent_as_context_to_the_model(upstream, up, fake):
    sid = await new_session(up, upstream.token, system_prompt="You are terse.")
    await behave(fake, n=3)
    first = (await up.post("/chat", json={"session_id": sid, "message": "Remember the word kiwi."})).json()
    assert first["response"] == "t0 t1 t2 " and first["model"] == "openai/fake-model"
    await up.post("/chat", json={"session_id": sid, "message": "Which word?"})
    async with httpx.AsyncClient() as c:
        sent = (await c.get(f"{fake.base_url}/_fake/stats")).json()["last_request"]
    assert sent["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Remember the word kiwi."},
        {"role": "assistant", "content": "t0 t1 t2 "},
        {"role": "user", "content": "Which word?"},
    ]
    assert sent["model"] == "fake-model" and sent["stream"] is True


async def test_chat_without_session_opens_one(auth):
    r = await auth.post("/chat", json={"message": "hello"})
    assert r.status_code == 200
    assert r.headers["X-Session-ID"] == r.json()["session_id"]
    assert (await auth.get(f"/sessions/{r.json()['session_id']}")).status_code == 200


async def test_client_msg_id_makes_sending_idempotent(auth, token):
    sid = await new_session(auth, token)
    a = (await auth.post("/chat", json={"session_id": sid, "message": "once", "client_msg_id": "m-1"})).json()
    b = (await auth.post("/chat", json={"session_id": sid, "message": "once", "client_msg_id": "m-1"})).json()
    assert a["generation_id"] == b["generation_id"] and a["response"] == b["response"]
    assert len((await auth.get(f"/sessions/{sid}")).json()["history"]) == 2


async def _chunks(body: bytes, size: int = 65536):
    for i in range(0, len(body), size):
        yield body[i : i + size]


async def test_errors_are_json_with_code_and_detail(auth, token, client):
    sid = await new_session(auth, token)
    cases = [
        (await auth.post("/chat", json={"session_id": sid, "message": ""}), 422, "empty_message"),
        (await auth.post("/chat", json={"session_id": sid, "message": "x" * 40_000}), 422, "message_too_long"),
        (
            await auth.post("/chat", content=b"{not json", headers={"content-type": "application/json"}),
            422,
            "validation_error",
        ),
        (await auth.post("/chat", json={"message": "x" * 2_000_000}), 413, "payload_too_large"),
        # the same body without a Content-Length (chunked): counted as it arrives
        (
            await auth.post(
                "/chat",
                content=_chunks(b'{"message": "' + b"x" * 2_000_000 + b'"}'),
                headers={"content-type": "application/json"},
            ),
            413,
            "payload_too_large",
        ),
        (await auth.get("/no/such/route"), 404, "not_found"),
        (await auth.delete("/users"), 405, "method_not_allowed"),
        (await client.post("/chat", json={"message": "hi"}), 401, "not_authenticated"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, (code, response.text[:200])
        body = response.json()
        assert set(body) == {"code", "detail"} and body["code"] == code
        assert "Traceback" not in response.text
    assert len((await auth.get(f"/sessions/{sid}")).json()["history"]) == 0  # nothing stored for bad input


async def test_health_and_aliases(client):
    for path in ("/health", "/api/v1/health"):
        r = await client.get(path)
        assert r.status_code == 200
        assert r.json()["status"] == "ok" and r.json()["components"]["database"]["status"] == "up"
    assert (await client.get("/api/v1/help")).json()["frames"]
    assert "/api/v1/health" not in (await client.get("/openapi.json")).json()["paths"]


async def test_models_lists_offline_and_upstream_models(upstream, up):
    body = (await up.get("/models")).json()
    ids = {m["id"] for m in body["data"]}
    assert {"offline/simulated", "openai/fake-model", "openai/fake-model-2"} <= ids
    assert body["default_model"] == "openai/fake-model"
