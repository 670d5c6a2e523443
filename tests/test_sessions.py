"""Sessions: creation with validation, ownership, CRUD (PROTOCOL.md, Sessions)."""

import pytest

from tests.support import register

MISSING = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


async def test_set_llm_creates_a_session(auth):
    r = await auth.post(
        "/set-llm",
        json={
            "model_name": "offline/simulated",
            "temperature": 0.3,
            "max_tokens": 200,
            "top_p": 0.9,
            "system_prompt": "Be brief.",
        },
    )
    assert r.status_code == 201
    body = r.json()
    assert len(body["session_id"]) == 26
    assert body["config"] == {
        "model_name": "offline/simulated",
        "temperature": 0.3,
        "max_tokens": 200,
        "top_p": 0.9,
        "system_prompt": "Be brief.",
        "fallback_models": [],
    }


async def test_bare_model_name_resolves_against_default_provider(auth):
    r = await auth.post("/set-llm", json={"model_name": "simulated"})
    assert r.status_code == 201 and r.json()["config"]["model_name"] == "offline/simulated"


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"temperature": 3}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"model_name": "offline/gpt-17"}, "available: offline/simulated"),
        ({"model_name": "nope/model"}, "available"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
async def test_invalid_config_is_422_with_a_clear_message(auth, body, fragment):
    r = await auth.post("/set-llm", json=body)
    assert r.status_code == 422
    assert set(r.json()) == {"code", "detail"} and fragment in r.json()["detail"]


async def test_list_get_patch_delete(auth):
    ids = [(await auth.post("/set-llm", json={"title": f"chat {i}"})).json()["session_id"] for i in range(3)]
    page = (await auth.get("/sessions", params={"limit": 2})).json()
    assert page["total"] == 3 and [s["session_id"] for s in page["items"]] == ids[::-1][:2]
    page2 = (await auth.get("/sessions", params={"limit": 2, "offset": 2})).json()
    assert [s["session_id"] for s in page2["items"]] == [ids[0]]

    r = await auth.patch(f"/sessions/{ids[0]}", json={"temperature": 1.5, "title": "renamed"})
    assert r.status_code == 200 and r.json()["config"]["temperature"] == 1.5 and r.json()["title"] == "renamed"
    detail = (await auth.get(f"/sessions/{ids[0]}")).json()
    assert detail["config"]["temperature"] == 1.5 and detail["history"] == []
    r = await auth.patch(f"/sessions/{ids[0]}", json={"temperature": None})
    assert r.status_code == 422

    assert (await auth.delete(f"/sessions/{ids[0]}")).status_code == 204
    assert (await auth.get(f"/sessions/{ids[0]}")).status_code == 404
    assert (await auth.get("/sessions")).json()["total"] == 2


async def test_another_users_session_is_exactly_a_missing_one(server, auth, client):
    sid = (await auth.post("/set-llm", json={})).json()["session_id"]
    other = await register(client, "mallory")
    headers = {"Authorization": f"Bearer {other}"}
    for method, path, body in [
        ("GET", "/sessions/{}", None),
        ("PATCH", "/sessions/{}", {"title": "x"}),
        ("DELETE", "/sessions/{}", None),
        ("GET", "/stream/{}", None),
    ]:
        theirs = await client.request(method, path.format(sid), json=body, headers=headers)
        missing = await client.request(method, path.format(MISSING), json=body, headers=headers)
        assert theirs.status_code == missing.status_code == 404, path
        assert theirs.json()["code"] == missing.json()["code"]
    for stream in (False, True):  # the send itself checks the owner: nothing may be stored
        body = {"session_id": sid, "message": "hi", "stream": stream}
        theirs = await client.post("/chat", json=body, headers=headers)
        missing = await client.post("/chat", json={**body, "session_id": MISSING}, headers=headers)
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["code"] == missing.json()["code"] == "session_not_found"
    mine = await auth.get(f"/sessions/{sid}")
    assert mine.status_code == 200 and mine.json()["history"] == []  # untouched


@pytest.mark.parametrize(
    "bad", ["123", "not-a-ulid-at-all-000000000", "8ZZZZZZZZZZZZZZZZZZZZZZZZZ", "01ARZ3NDEKTSV4RRFFQ69G5FAU!"]
)
async def test_invalid_ids_are_422(auth, bad):
    r = await auth.get(f"/sessions/{bad}")
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    r = await auth.post("/chat", json={"session_id": bad, "message": "hi"})
    assert r.status_code == 422


async def test_a_huge_offset_is_a_validation_error_not_a_500(auth):
    r = await auth.get("/sessions", params={"offset": 10**20})
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
