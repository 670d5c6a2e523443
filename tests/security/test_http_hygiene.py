"""Security headers on the UI, static files and JSON; no-store on tokens and users' data;
no Server header; no redirect built from the request's Host header."""

import asyncio

from tests.support import PASSWORD


def _csp(response) -> dict[str, str]:
    directives = {}
    for part in response.headers["content-security-policy"].split(";"):
        name, _, value = part.strip().partition(" ")
        directives[name] = value
    return directives


def _common(response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "server" not in response.headers


async def test_ui_page_and_static_files_have_a_strict_csp(client):
    for path in ("/", "/static/js/main.js", "/static/css/base.css", "/static/index.html"):
        r = await client.get(path)
        assert r.status_code == 200, path
        _common(r)
        csp = _csp(r)
        assert csp["script-src"] == "'self'" and csp["default-src"] == "'self'"
        assert csp["connect-src"] == "'self'" and csp["frame-ancestors"] == "'none'"
        assert "unsafe-inline" not in r.headers["content-security-policy"]
        assert "http" not in r.headers["content-security-policy"]  # no remote origin


async def test_ui_page_has_no_inline_script_style_or_handler(client):
    html = (await client.get("/")).text.lower()
    assert "<style" not in html and " style=" not in html
    for tag in html.split("<script")[1:]:
        assert " src=" in tag.split(">", 1)[0], "an inline script"
    assert " onclick=" not in html and " onload=" not in html and "javascript:" not in html


async def test_json_responses_are_nosniff_and_no_store(client, auth):
    r = await client.post("/token", data={"username": "alice", "password": PASSWORD})
    assert r.status_code == 200
    _common(r)
    assert r.headers["cache-control"] == "no-store"
    for response in (
        await auth.get("/sessions"),
        await client.get("/sessions"),
        await auth.get("/sessions/01ARZ3NDEKTSV4RRFFQ69G5FAV"),
    ):
        _common(response)
        assert response.headers["cache-control"] == "no-store"
        assert _csp(response)["default-src"] == "'none'"


async def test_error_before_the_app_also_has_the_headers(client):
    r = await client.post("/users", content=b"x" * 2_000_000, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    _common(r)


async def test_static_redirect_never_names_the_request_host(server):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /static HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
    async with asyncio.timeout(10):
        response = (await reader.read()).decode("latin-1").lower()
    writer.close()
    assert response.startswith("http/1.1 307")
    location = [line for line in response.split("\r\n") if line.startswith("location:")]
    assert location == ["location: /static/"]
    assert "evil.example" not in response
