"""The OpenAPI schema is the contract the service really keeps: the native error body, the
statuses each operation returns, the SSE media type, the rules the services check, and JSON
types taken as they are (no coercion the schema does not state)."""

import json

import pytest

from tests.support import Server, make_settings, new_session, read_sse

pytestmark = pytest.mark.security

MISSING = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


def documented(schema: dict, method: str, path: str) -> dict:
    return schema["paths"][path][method.lower()]["responses"]


async def openapi(client) -> dict:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


async def test_every_error_is_documented_as_code_and_detail(client):
    schema = await openapi(client)
    assert "HTTPValidationError" not in json.dumps(schema)
    assert schema["components"]["schemas"]["Error"]["required"] == ["code", "detail"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status in {"422", "401", "404", "409", "413", "429"}:
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/Error", (method, path, status)


async def test_statuses_returned_are_documented(server, client, auth, token):
    schema = await openapi(client)
    sid = await new_session(auth, token)
    cases = [
        ("GET", "/sessions", client.get("/sessions"), 401),
        ("GET", "/sessions/{session_id}", auth.get(f"/sessions/{MISSING}"), 404),
        ("PATCH", "/sessions/{session_id}", auth.patch(f"/sessions/{sid}", json={"model_name": "x/none"}), 422),
        ("POST", "/users", client.post("/users", json={"username": "alice", "password": "another-long-one"}), 409),
        ("POST", "/token", client.post("/token", data={"username": "alice", "password": "wrong-password"}), 401),
        ("POST", "/set-llm", auth.post("/set-llm", content=b"\xff", headers={"Content-Type": "application/json"}), 400),
        (
            "POST",
            "/set-llm",
            auth.post(
                "/set-llm",
                content=b"x" * (server.settings.max_request_bytes + 1),
                headers={"Content-Type": "application/json"},
            ),
            413,
        ),
        ("POST", "/chat", auth.post("/chat", json={"session_id": MISSING, "message": "hi"}), 404),
        ("POST", "/generations/{generation_id}/cancel", auth.post(f"/generations/{MISSING}/cancel"), 404),
        ("GET", "/stream/{stream_id}", auth.get(f"/stream/{MISSING}"), 404),
    ]
    for method, path, request, expected in cases:
        r = await request
        assert r.status_code == expected, (method, path, r.text)
        assert set(r.json()) >= {"code", "detail"}
        assert str(expected) in documented(schema, method, path), (method, path, expected)


async def test_streaming_routes_document_event_stream(client, auth, token):
    schema = await openapi(client)
    for path in ("/generations/{generation_id}/events", "/stream/{stream_id}"):
        assert list(documented(schema, "GET", path)["200"]["content"]) == ["text/event-stream"]
    assert set(documented(schema, "POST", "/chat")["200"]["content"]) == {"application/json", "text/event-stream"}
    event = documented(schema, "GET", "/stream/{stream_id}")["200"]["content"]["text/event-stream"]["schema"]
    frame_types = set(event["properties"]["event"]["enum"])

    sid = await new_session(auth, token)
    async with auth.stream("POST", "/chat", json={"session_id": sid, "message": "hi", "stream": True}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = await read_sse(r)
    assert events and {e["_event"] for e in events} <= frame_types


async def test_schema_states_the_limits_in_force(tmp_path):
    server = await Server(make_settings(tmp_path, max_message_chars=500, max_system_prompt_chars=70)).start()
    try:
        async with server.client() as client:
            schemas = (await openapi(client))["components"]["schemas"]
    finally:
        await server.stop()
    message = schemas["ChatIn"]["properties"]["message"]
    assert (message["minLength"], message["maxLength"]) == (1, 500)
    prompt = schemas["SetLLM"]["properties"]["system_prompt"]["anyOf"][0]
    assert prompt["maxLength"] == 70
    assert schemas["SetLLM"]["properties"]["model_name"]["anyOf"][0]["enum"] == ["offline/simulated"]
    assert schemas["UserCreate"]["properties"]["password"]["minLength"] == 8
    # PATCH may leave a field out but never set it to null (the service refuses null).
    assert "anyOf" not in schemas["SessionPatch"]["properties"]["temperature"]


@pytest.mark.parametrize(
    "body",
    [
        {"temperature": False},
        {"top_p": True},
        {"max_tokens": "5"},
        {"max_tokens": True},
        {"temperature": "0.5"},
    ],
)
async def test_json_types_are_not_coerced(auth, body):
    r = await auth.post("/set-llm", json=body)
    assert (r.status_code, r.json()["code"]) == (422, "validation_error"), r.text


async def test_chat_flags_are_booleans(auth, token):
    sid = await new_session(auth, token)
    r = await auth.post("/chat", json={"session_id": sid, "message": "hi", "background": "yes"})
    assert (r.status_code, r.json()["code"]) == (422, "validation_error"), r.text


async def test_an_integral_number_is_an_integer(auth):
    r = await auth.post("/set-llm", json={"max_tokens": 5.0})
    assert r.status_code == 201 and r.json()["config"]["max_tokens"] == 5


async def test_method_not_allowed_lists_every_method_of_the_path(auth, token):
    sid = await new_session(auth, token)
    r = await auth.put(f"/sessions/{sid}", json={})
    assert (r.status_code, r.json()["code"]) == (405, "method_not_allowed")
    assert set(r.headers["allow"].replace(" ", "").split(",")) >= {"GET", "PATCH", "DELETE"}


async def test_a_malformed_last_event_id_is_refused_even_beside_after(auth, token):
    sid = await new_session(auth, token)
    r = await auth.post("/chat", json={"session_id": sid, "message": "hi", "background": True})
    generation_id = r.json()["generation_id"]
    for path in (f"/generations/{generation_id}/events?after=0", f"/stream/{generation_id}?after=0"):
        r = await auth.get(path, headers={"Last-Event-ID": "f)"})
        assert (r.status_code, r.json()["code"]) == (422, "invalid_last_event_id"), path


async def test_links_lead_a_stateful_client_to_the_stream_route(client, auth, token):
    schema = await openapi(client)
    stream_op = schema["paths"]["/stream/{stream_id}"]["get"]["operationId"]
    link = documented(schema, "POST", "/set-llm")["201"]["links"]["Stream"]
    assert link == {"operationId": stream_op, "parameters": {"stream_id": "$response.body#/session_id"}}
    link = documented(schema, "POST", "/chat")["202"]["links"]["Stream"]
    assert link["parameters"] == {"stream_id": "$response.body#/generation_id"}

    sid = await new_session(auth, token)  # following the link reaches a real stream
    r = await auth.post("/chat", json={"session_id": sid, "message": "hi", "background": True})
    async with auth.stream("GET", f"/stream/{r.json()['generation_id']}") as response:
        assert response.status_code == 200
        assert (await read_sse(response))[-1]["type"] == "done"


@pytest.mark.parametrize("blank", ["\x85", "\x1c\x1f", "\ufeff", " \u3000\t"])
async def test_blank_means_the_same_to_the_schema_and_to_the_service(client, auth, token, blank):
    # Python's strip() and a JSON Schema `\s` disagree on U+001C-1F, U+0085 and U+FEFF: a
    # schema tool generated "\x85" as a valid message that the service refused.
    import re

    schema = (await client.get("/openapi.json")).json()
    pattern = schema["components"]["schemas"]["ChatIn"]["properties"]["message"]["pattern"]
    assert re.search(pattern, blank) is None and re.search(pattern, blank + "x")
    sid = await new_session(auth, token)
    r = await auth.post("/chat", json={"session_id": sid, "message": blank})
    assert r.status_code == 422 and r.json()["code"] == "empty_message"


async def test_last_event_id_schema_and_service_agree_on_length(client, auth, token):
    # The schema allowed any digits while the service refused numbers over 2**63 - 1, so a
    # schema-valid 20-digit Last-Event-ID was rejected: both now stop at 18 digits.
    import re

    schema = (await client.get("/openapi.json")).json()
    params = schema["paths"]["/generations/{generation_id}/events"]["get"]["parameters"]
    header = next(p for p in params if p["name"] == "Last-Event-ID")["schema"]
    pattern = next(b["pattern"] for b in header.get("anyOf", [header]) if "pattern" in b)
    sid = await new_session(auth, token)
    gen = (await auth.post("/chat", json={"session_id": sid, "message": "hi"})).json()["generation_id"]
    for value, ok in (("9" * 18, True), ("9" * 19, False), ("87600611051367573038", False)):
        assert bool(re.fullmatch(pattern, value)) is ok
        r = await auth.get(f"/generations/{gen}/events", headers={"Last-Event-ID": value})
        assert (r.status_code == 200) is ok, (value, r.status_code)
