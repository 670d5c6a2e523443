"""Staying signed in (issue 17.4), queue positions and the API-keys panel in Settings (17.6),
in Debian's chromium against the real server."""

import pytest

from tests.test_ui_browser import browser, live_server, make_page, user  # noqa: F401 (fixtures)
from tests.ui_support import Api, LiveServer, assistants, send, shot, sign_in, wait_seq, wait_status

TOKEN = "sessionStorage.getItem('llmchat.token')"


def _in_chat(page, session_id: str, replies: int) -> None:
    page.wait_for_selector("#app-view:not([hidden])")
    page.wait_for_function("id => location.hash === '#/s/' + id", arg=session_id)
    page.wait_for_function("n => document.querySelectorAll('[data-role=assistant]').length === n", arg=replies)


def test_reload_new_tab_and_expired_token_keep_the_user_signed_in(make_page, user, live_server):  # noqa: F811
    page = make_page()
    sign_in(page, live_server.base, user.username)
    send(page, "remember this chat")
    wait_status(page, 0, "completed")
    sid = page.evaluate("location.hash").split("/")[-1]
    assert page.evaluate("document.cookie") == ""  # the refresh token is out of the page's reach

    tab = page.context.new_page()  # a new tab: no token of its own, the cookie renews one
    tab.goto(f"{live_server.base}/")
    _in_chat(tab, sid, 1)  # ... and it lands in the chat last open
    assert tab.evaluate(TOKEN) and tab.evaluate(TOKEN) != page.evaluate(TOKEN)

    page.evaluate("sessionStorage.setItem('llmchat.token', 'not-a-jwt')")  # refused: renewed, retried
    page.reload()
    _in_chat(page, sid, 1)
    page.evaluate("sessionStorage.setItem('llmchat.expires_at', '1')")  # expired: renewed at start
    page.reload()
    _in_chat(page, sid, 1)
    assert page.evaluate(TOKEN) != "not-a-jwt"

    # Without the cookie the sign-in is over; signing in again lands in the same chat.
    page.context.clear_cookies()
    page.evaluate("sessionStorage.setItem('llmchat.token', 'not-a-jwt')")
    page.reload()
    page.wait_for_selector("#auth-view:not([hidden])")
    assert "sign in again" in page.inner_text("#auth-info")
    page.fill("#login-username", user.username)
    page.fill("#login-password", "correct-horse-battery")
    page.click("#login-submit")
    _in_chat(page, sid, 1)

    # Sign out ends the sign-in on the server: the cookie no longer renews anything.
    cookie = next(c for c in page.context.cookies() if c["name"] == "llmchat_refresh")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/token/refresh"
    page.click("#logout")
    page.wait_for_selector("#auth-view:not([hidden])")
    http = Api(live_server.base).http  # the browser's cookie, in a client's jar of its own
    http.cookies.set("llmchat_refresh", cookie["value"], domain=cookie["domain"], path=cookie["path"])
    r = http.post("/token/refresh")
    assert r.status_code == 401
    # The other tab keeps its access token until it expires (checked by signature alone), but
    # cannot renew it: the sign-in it shared is over.
    assert tab.evaluate("async () => (await import('/static/js/api.js')).auth.renew()") is False


def test_renewal_mid_stream_does_not_interrupt_it(make_page, user, live_server):  # noqa: F811
    page = make_page()
    sockets = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    sign_in(page, live_server.base, user.username)
    send(page, " ".join(f"word{i}" for i in range(150)))  # the offline reply quotes it: a long stream
    wait_seq(page, 0, 5)
    before = next(c["value"] for c in page.context.cookies() if c["name"] == "llmchat_refresh")
    assert page.evaluate("async () => (await import('/static/js/api.js')).auth.renew()") is True
    assert next(c["value"] for c in page.context.cookies() if c["name"] == "llmchat_refresh") != before
    assert wait_status(page, 0, "completed", timeout=60000) == "completed"
    msg = assistants(page).nth(0)
    assert msg.get_attribute("data-raw") == user.generation(msg.get_attribute("data-generation-id"))["content"]
    assert len(sockets) == 1  # the socket was never closed for the renewal


@pytest.fixture(scope="module")
def short_token_server(tmp_path_factory):
    srv = LiveServer(
        tmp_path_factory.mktemp("ui-exp") / "data", access_token_expire_minutes=1, time_between_chunks=0.09
    ).start(timeout=120)
    yield srv
    srv.stop()


@pytest.mark.timeout(400)  # the token lives a minute, the answer longer
def test_a_stream_outlives_its_access_token(make_page, short_token_server):  # noqa: F811
    """The socket's token expires mid-answer (4401): the page renews, reconnects and resumes;
    the answer arrives whole, and the user is never signed out."""
    api = Api(short_token_server.base).signup()
    page = make_page()
    sign_in(page, short_token_server.base, api.username)
    send(page, " ".join(f"w{i}" for i in range(900)))  # about 85 s at 90 ms a word, within max_tokens 1024
    assert wait_status(page, 0, ("completed", "incomplete", "failed"), timeout=200000) == "completed"
    msg = assistants(page).nth(0)
    api.login()  # this client's own token has expired meanwhile too
    assert msg.get_attribute("data-raw") == api.generation(msg.get_attribute("data-generation-id"))["content"]
    assert page.is_visible("#app-view") and not page.is_visible("#auth-view")


def test_queue_positions_count_down(make_page, user, live_server):  # noqa: F811
    page = make_page()
    sign_in(page, live_server.base, user.username)
    send(page, "first " * 40)  # no chat open: one is created with the default model
    page.wait_for_selector("[data-role=assistant]")
    send(page, "second")
    wait_status(page, 1, "queued", timeout=5000)
    send(page, "third")
    wait_status(page, 2, "queued", timeout=5000)
    wait_seq(page, 0, 1)
    status = "i => document.querySelectorAll('[data-role=assistant]')[i].innerText"
    page.wait_for_function(f"({status})(2).includes('2 ahead')")
    shot(page, "40-queue-positions")
    wait_status(page, 0, "completed")
    page.wait_for_function(f"({status})(2).includes('1 ahead') || ({status})(2).length > 40")
    for i in range(3):
        wait_status(page, i, "completed", timeout=60000)


def test_api_keys_panel_inside_settings(make_page, user, live_server):  # noqa: F811
    page = make_page()
    sign_in(page, live_server.base, user.username)
    page.get_by_role("button", name="Settings", exact=True).click()
    page.wait_for_selector("#app-settings[open]")
    page.locator("#app-settings").get_by_role("button", name="API keys").click()
    page.wait_for_selector("#keys-dialog[open]")
    page.get_by_label("Name", exact=True).fill("from settings")
    page.get_by_role("button", name="Create key").click()
    page.wait_for_selector("[data-testid=api-key-item]")
    shot(page, "41-api-keys-in-settings")
