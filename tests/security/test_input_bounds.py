"""No input is a 500: integers beyond what the database stores, odd digits in
Last-Event-ID and lone surrogates in JSON strings are all refused with a 422."""

import json

import pytest

from tests.support import new_session

INT64_MAX = 2**63 - 1
SURROGATE = "\ud800"


def _raw_json(obj) -> bytes:
    # json.dumps escapes a lone surrogate as \ud800, exactly what an attacker sends.
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    "query",
    [
        f"offset={2**63}",
        "offset=18446744073709551616",
        f"offset={10**40}",
        f"limit=15&offset={2**64}",
        "limit=-1",
        f"limit={2**63}",
    ],
)
async def test_session_list_bounds_are_422(auth, query):
    r = await auth.get(f"/sessions?{query}")
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"


async def test_largest_offset_is_an_empty_page(auth):
    r = await auth.get(f"/sessions?offset={INT64_MAX}")
    assert r.status_code == 200, r.text
    assert r.json()["items"] == []


async def _generation(auth, token) -> str:
    sid = await new_session(auth, token)
    r = await auth.post("/chat", json={"session_id": sid, "message": "hi"})
    assert r.status_code == 200, r.text
    return r.json()["generation_id"]


# Header bytes reach the app as latin-1: b"\xb2" is "\u00b2" (superscript two), a digit to
# str.isdigit() that int() refuses.
@pytest.mark.parametrize(
    "value", [b"\xb2", b"1\xb9", "\u0661".encode(), b"-1", b"1.0", b"1 2", b"1e3", str(2**63).encode(), b"9" * 40]
)
async def test_last_event_id_must_be_ascii_digits(auth, token, value):
    gen = await _generation(auth, token)
    r = await auth.get(f"/generations/{gen}/events", headers={"Last-Event-ID": value})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_last_event_id"


async def test_after_query_is_bounded(auth, token):
    gen = await _generation(auth, token)
    r = await auth.get(f"/generations/{gen}/events?after={2**63}")
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"


async def test_valid_last_event_id_still_resumes(auth, token):
    gen = await _generation(auth, token)
    async with auth.stream("GET", f"/generations/{gen}/events", headers={"Last-Event-ID": "1"}) as r:
        assert r.status_code == 200
        body = (await r.aread()).decode()
    assert "event: done" in body and "id: 1\n" not in body


@pytest.mark.parametrize(
    "path, body",
    [
        ("/set-llm", {"system_prompt": f"be {SURROGATE} nice"}),
        ("/set-llm", {"title": f"t{SURROGATE}"}),
        ("/set-llm", {"model_name": f"offline/{SURROGATE}"}),
        ("/set-llm", {"fallback_models": [SURROGATE]}),
        ("/chat", {"message": f"hello {SURROGATE}"}),
        ("/chat", {"message": "hello", "client_msg_id": f"m{SURROGATE}"}),
    ],
)
async def test_lone_surrogates_in_json_are_422(auth, path, body):
    r = await auth.post(path, content=_raw_json(body), headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"


async def test_lone_surrogate_in_patch_is_422(auth, token):
    sid = await new_session(auth, token)
    for field in ("title", "system_prompt"):
        r = await auth.patch(
            f"/sessions/{sid}", content=_raw_json({field: SURROGATE}), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 422, r.text
    assert (await auth.get(f"/sessions/{sid}")).status_code == 200


@pytest.mark.parametrize("field", ["username", "password"])
async def test_lone_surrogate_in_registration_is_422(client, field):
    body = {"username": "bob", "password": "correct-horse-battery", field: f"x{SURROGATE}yz-long-enough"}
    r = await client.post("/users", content=_raw_json(body), headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text


async def test_sign_in_form_with_invalid_utf8_is_not_500(client):
    r = await client.post(
        "/token",
        content=b"username=%ED%A0%80&password=%ED%A0%80",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code in (401, 422), r.text


async def test_deeply_nested_json_body_is_a_client_error(auth):
    r = await auth.post("/chat", content=b"[" * 10_000 + b"]" * 10_000, headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    assert "code" in r.json()
