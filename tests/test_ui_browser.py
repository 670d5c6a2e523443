"""The web UI in a real browser (Debian's chromium, headless) against the real server,
started as a subprocess with the offline model paced at 50 ms per chunk."""

import json
import time

import pytest

# No skip when chromium is missing: .ci/run installs it, and a missing browser must fail loudly.
from playwright import sync_api

from tests.ui_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Api,
    LiveServer,
    assistants,
    open_session,
    rendered_text_of,
    send,
    set_mode,
    shot,
    sign_in,
    wait_seq,
    wait_status,
)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    srv = LiveServer(tmp_path_factory.mktemp("ui") / "data").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def user(live_server):
    return Api(live_server.base).signup()


def _poll_outside_the_page(page) -> None:
    """page.wait_for_function evaluates its predicate with eval() inside the page, which the
    UI's Content-Security-Policy refuses (no 'unsafe-eval'); page.evaluate runs through the
    DevTools protocol, outside it. The same condition, polled with a deadline."""

    def wait_for_function(expression, arg=None, timeout=None, polling=None):
        deadline = time.monotonic() + (20000 if timeout is None else timeout) / 1000
        while not (value := page.evaluate(expression, arg)):
            if time.monotonic() > deadline:
                raise sync_api.TimeoutError(f"wait_for_function timed out: {expression}")
            page.wait_for_timeout(50)
        return value

    page.wait_for_function = wait_for_function


@pytest.fixture
def make_page(browser):
    """New browser contexts; fails the test on any uncaught page error or JS dialog."""
    contexts, problems = [], []

    def make(**options):
        opts = {"viewport": {"width": 1280, "height": 820}, "color_scheme": "light", **options}
        ctx = browser.new_context(**opts)
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(20000)
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        # The UI runs under the service's CSP: a violation is a bug in the page.
        page.on(
            "console",
            lambda m: m.type == "error" and "Content Security Policy" in m.text and problems.append(f"csp: {m.text}"),
        )
        _poll_outside_the_page(page)
        page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
        # Everything is served by the service itself: no CDN, no third-party request.
        page.on(
            "request",
            lambda r: (
                r.url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:", "data:"))
                or problems.append(f"external request: {r.url}")
            ),
        )
        return page

    yield make
    for ctx in contexts:
        ctx.close()
    assert not problems, problems


@pytest.fixture
def chat_page(make_page, user, live_server):
    page = make_page()
    sign_in(page, live_server.base, user.username)
    return page


def dom_roles(page):
    return page.eval_on_selector_all("#messages > .msg", "els => els.map(e => e.dataset.role)")


def check_against_api(page, user, index):
    """The reply in the DOM is exactly the stored generation: same raw text, same rendering."""
    msg = assistants(page).nth(index)
    gen = user.generation(msg.get_attribute("data-generation-id"))
    assert msg.get_attribute("data-status") == gen["status"]
    assert msg.get_attribute("data-raw") == gen["content"]
    shown = msg.locator(".msg-body").evaluate("e => e.textContent")
    assert shown == rendered_text_of(page, gen["content"])
    return gen


def test_sign_up_sign_in_and_sign_out(make_page, live_server):
    page = make_page()
    page.goto(f"{live_server.base}/")
    shot(page, "01-sign-in-light")
    page.click("#auth-switch")
    assert page.inner_text("#auth-title") == "Create an account"
    name = Api(live_server.base).username
    page.fill("#login-username", name)
    page.fill("#login-password", "correct-horse-battery")
    page.click("#login-submit")
    page.wait_for_selector("#app-view:not([hidden])")
    assert page.inner_text("#user-name") == name
    page.wait_for_selector("#session-empty", state="visible")  # a new user has no chats yet
    assert page.evaluate("sessionStorage.getItem('llmchat.token')")

    page.reload()  # the token lives for the tab
    page.wait_for_selector("#app-view:not([hidden])")

    page.click("#logout")
    page.wait_for_selector("#auth-view:not([hidden])")
    assert page.evaluate("sessionStorage.getItem('llmchat.token')") is None

    page.click("#auth-switch")  # a taken name
    page.fill("#login-username", name)
    page.fill("#login-password", "correct-horse-battery")
    page.click("#login-submit")
    page.wait_for_selector("#auth-error:not([hidden])")
    assert "already taken" in page.inner_text("#auth-error")

    page.click("#auth-switch")  # wrong password
    page.fill("#login-password", "wrong-password-1")
    page.click("#login-submit")
    page.wait_for_function("document.getElementById('auth-error').textContent.includes('Wrong username')")

    page.fill("#login-password", "correct-horse-battery")
    page.click("#login-submit")
    page.wait_for_selector("#app-view:not([hidden])")


def test_invalid_or_expired_token_returns_to_sign_in(chat_page):
    page = chat_page
    page.context.clear_cookies()  # no refresh cookie either (with it, tests/test_ui_session.py)
    page.evaluate("sessionStorage.setItem('llmchat.token', 'not-a-jwt')")
    page.reload()
    page.wait_for_selector("#auth-view:not([hidden])")
    assert "sign in again" in page.inner_text("#auth-info")

    page.evaluate("sessionStorage.setItem('llmchat.token', 'x'); sessionStorage.setItem('llmchat.expires_at', '1')")
    page.reload()
    page.wait_for_selector("#auth-view:not([hidden])")
    assert "expired" in page.inner_text("#auth-info")


def test_create_edit_and_delete_a_session(chat_page, user):
    page = chat_page
    page.click("#new-chat")
    page.wait_for_selector("#settings-dialog[open]")
    page.wait_for_function("document.getElementById('cfg-model').value === 'offline/simulated'")
    page.fill("#cfg-title", "Release notes")
    page.fill("#cfg-temperature", "0.3")
    shot(page, "05-new-chat-dialog-light")
    page.click("#cfg-save")
    page.wait_for_selector("#settings-dialog", state="hidden")
    item = page.locator("[data-testid=session-item]").first
    assert item.locator(".session-title").inner_text() == "Release notes"
    assert item.get_attribute("aria-current") == "true"
    page.wait_for_function("document.getElementById('chat-title').textContent === 'Release notes'")
    assert page.inner_text("#session-settings") == "offline/simulated"
    sid = item.get_attribute("data-session-id")
    assert user.session(sid)["config"]["temperature"] == 0.3

    item.locator("[data-action=edit]").click()
    page.wait_for_selector("#settings-dialog[open]")
    assert page.input_value("#cfg-title") == "Release notes"
    page.fill("#cfg-temperature", "7")  # out of range: the server's 422 is shown in the dialog
    page.click("#cfg-save")
    page.wait_for_selector("#cfg-error:not([hidden])")
    assert page.inner_text("#cfg-error").strip()
    page.fill("#cfg-temperature", "0.5")
    page.fill("#cfg-title", "Renamed chat")
    page.click("#cfg-save")
    page.wait_for_selector("#settings-dialog", state="hidden")
    page.wait_for_function("document.getElementById('chat-title').textContent === 'Renamed chat'")
    detail = user.session(sid)
    assert (detail["title"], detail["config"]["temperature"]) == ("Renamed chat", 0.5)
    assert page.locator(f"[data-session-id='{sid}'] .session-title").inner_text() == "Renamed chat"

    page.locator(f"[data-session-id='{sid}'] [data-action=delete]").click()
    page.wait_for_selector("#confirm-dialog[open]")
    page.click("#confirm-ok")
    page.wait_for_selector(f"[data-session-id='{sid}']", state="detached")
    assert user.http.get(f"/sessions/{sid}").status_code == 404
    assert page.inner_text("#chat-title") == "New chat"


def test_two_messages_stream_and_complete_in_order(chat_page, user):
    page = chat_page
    send(page, "first question alpha")  # no chat open: one is created with the default model
    page.wait_for_selector("[data-role=assistant]")
    send(page, "second question beta")
    wait_status(page, 1, "queued", timeout=5000)
    # The badge may be drawn a moment after the status (the branch is re-rendered once the new
    # chat's URL is set): wait for it, rather than read it once.
    page.wait_for_function(
        "() => (document.querySelectorAll('[data-role=assistant]')[1]"
        "?.querySelector('[data-testid=msg-status]')?.textContent || '').includes('Queued')",
        timeout=5000,
    )
    assert page.is_visible("#stop")
    wait_seq(page, 0, 10)
    # While one reply streams and one waits: one Stop control, one typing indicator (the
    # caret inline in the running reply), no queue line and no dots.
    assert page.get_by_role("button", name="Stop", exact=True).count() == 1
    assert not page.is_visible("#typing") and page.locator("[data-role=assistant] .dots").count() == 0
    caret = "e => getComputedStyle(e.querySelector('.msg-body > :last-child'), '::after').content"
    assert assistants(page).nth(0).evaluate(caret) == '""'
    assert assistants(page).nth(0).get_attribute("data-status") == "running"  # tokens arrive live
    assert page.get_attribute("#status-stream", "data-state") == "streaming"
    assert page.get_attribute("#status-socket", "data-state") == "open"
    shot(page, "03-streaming-light")

    wait_status(page, 0, "completed")
    wait_status(page, 1, "completed")
    assert dom_roles(page) == ["user", "assistant", "user", "assistant"]
    first, second = check_against_api(page, user, 0), check_against_api(page, user, 1)
    assert "first question alpha" in first["content"] and "second question beta" in second["content"]
    assert "| your message number in this chat | 2 |" in second["content"]
    times = page.eval_on_selector_all("[data-testid=msg-time]", "els => els.map(e => e.textContent)")
    assert len(times) == 4 and all(times)
    # Each reply names the model that answered (done.model), also once loaded from history.
    models = "els => els.map(e => e.textContent)"
    assert page.eval_on_selector_all("[data-testid=msg-model]", models) == [first["model"], second["model"]]
    assert first["model"] and "/" in first["model"]
    page.reload()
    wait_status(page, 1, "completed")
    assert page.eval_on_selector_all("[data-testid=msg-model]", models) == [first["model"], second["model"]]
    page.wait_for_selector("#stop", state="hidden")
    assert not page.is_visible("#typing")
    assert page.get_attribute("#status-stream", "data-state") == "idle"
    assert page.get_attribute("#status-api", "data-state") == "up"
    # Shift+Enter is a new line, not a send.
    page.fill("#message-input", "line one")
    page.press("#message-input", "Shift+Enter")
    page.keyboard.type("line two")
    assert page.input_value("#message-input") == "line one\nline two"
    assert page.locator("[data-role=user]").count() == 2
    shot(page, "02-conversation-light")


@pytest.mark.parametrize("mode", ["ws", "sse"])
def test_stop_cancels_the_running_reply(chat_page, user, mode):
    page = chat_page
    if mode == "sse":
        set_mode(page, "sse")
    send(page, "please write a long answer")
    wait_seq(page, 0, 5)
    page.click("#stop")
    wait_status(page, 0, "cancelled")
    msg = assistants(page).nth(0)
    assert msg.locator("[data-testid=msg-status]").text_content() == "Cancelled"
    assert "Stopped" in msg.locator("[data-testid=msg-error]").text_content()
    gen = check_against_api(page, user, 0)
    assert gen["status"] == "cancelled" and gen["finish_reason"] == "cancelled"
    page.wait_for_selector("#stop", state="hidden")
    shot(page, f"09-cancelled-{mode}-light")


@pytest.mark.parametrize("mode", ["ws", "sse"])
def test_reload_mid_stream_continues_without_loss_or_repeat(chat_page, user, mode):
    page = chat_page
    sent_frames, requests = [], []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent_frames.append(payload)))
    page.on("request", lambda r: requests.append(r.url))
    if mode == "sse":
        set_mode(page, "sse")
    send(page, f"reload test over {mode}")
    wait_seq(page, 0, 15)
    before = assistants(page).nth(0).get_attribute("data-raw")
    assert before
    page.reload()
    page.wait_for_selector("#app-view:not([hidden])")
    page.wait_for_selector("[data-role=assistant]")
    status = wait_status(page, 0, ["running", "completed"])
    wait_status(page, 0, "completed")
    gen = check_against_api(page, user, 0)
    assert gen["content"].startswith(before)
    assert assistants(page).count() == 1 and page.locator("[data-role=user]").count() == 1
    if mode == "ws":
        resumes = [json.loads(f) for f in sent_frames if '"resume"' in f]
        assert any(r["generation_id"] == gen["id"] for r in resumes), (status, sent_frames)
    else:
        assert any(f"/generations/{gen['id']}/events?after=" in u for u in requests)


def test_lost_socket_reconnects_and_resumes(make_page, user, live_server):
    page = make_page()
    page.add_init_script("""(() => {
        const Native = window.WebSocket; window.__sockets = [];
        window.WebSocket = class extends Native {
            constructor(...args) { super(...args); window.__sockets.push(this); } };
    })()""")
    sign_in(page, live_server.base, user.username)
    send(page, "survive a dropped socket")
    wait_seq(page, 0, 8)
    page.evaluate("window.__sockets.at(-1).close(4000, 'test drop')")
    wait_status(page, 0, "completed")
    assert page.evaluate("window.__sockets.length") >= 2
    check_against_api(page, user, 0)
    page.wait_for_function("document.getElementById('status-socket').dataset.state === 'open'")


def test_markdown_is_sanitized_against_xss(chat_page, user):
    page = chat_page
    payload = (
        'Hi <img src=x onerror="window.__xss=1"> and [click](javascript:window.__xss=2) '
        "<script>window.__xss=3</script> ![pic](https://tracker.example/p.png) "
        '<a href="#" onclick="window.__xss=4">a</a>'
    )
    send(page, payload)
    wait_status(page, 0, "completed")
    check_against_api(page, user, 0)
    box = page.locator("#messages")
    assert box.locator("img").count() == 0
    assert box.locator("script").count() == 0
    assert page.locator("[onerror], [onclick]").count() == 0
    assert page.locator("a[href^='javascript' i]").count() == 0
    # The javascript: link lost its address: it is shown as plain text, not as a dead link.
    assert assistants(page).nth(0).locator("a", has_text="click").count() == 0
    link = assistants(page).nth(0).locator(".link-removed", has_text="click")
    assert link.count() == 1
    link.click()
    assert page.evaluate("window.__xss") is None
    assert "<img src=x" in page.locator("[data-role=user] .msg-body").text_content()
    assert "<img src=x" in assistants(page).nth(0).locator(".msg-body").text_content()


def test_incomplete_and_rejected_messages_are_shown(chat_page, user):
    page = chat_page
    sid = user.create_session(max_tokens=8, title="Tiny budget")["session_id"]
    page.reload()
    page.wait_for_selector(f"[data-session-id='{sid}']")
    open_session(page, sid)
    send(page, "this reply will be cut short")
    wait_status(page, 0, "incomplete")
    msg = assistants(page).nth(0)
    assert msg.locator("[data-testid=msg-status]").text_content() == "Incomplete · length"
    assert "max tokens" in msg.locator("[data-testid=msg-error]").text_content()
    check_against_api(page, user, 0)

    page.eval_on_selector("#scroller", "e => { e.scrollTop = e.scrollHeight; }")
    shot(page, "10-errors-light")


def test_code_block_copy_and_dark_theme(make_page, user, live_server):
    page = make_page(color_scheme="dark", permissions=["clipboard-read", "clipboard-write"])
    sign_in(page, live_server.base, user.username)
    shot(page, "11-empty-dark")
    send(page, "Show me how to **pick a model**, with `code`")
    wait_status(page, 0, "completed")
    block = assistants(page).nth(0).locator(".code-block")
    assert block.count() == 1 and block.locator("code.hljs span").count() > 0
    block.locator("[data-testid=copy-code]").click()
    page.wait_for_function("document.querySelector('.copy-btn').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == block.locator("code").text_content()
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(21, 23, 28)"
    shot(page, "04-conversation-dark")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_narrow_layout(make_page, user, live_server, scheme):
    page = make_page(viewport={"width": 375, "height": 740}, color_scheme=scheme, is_mobile=True, has_touch=True)
    sign_in(page, live_server.base, user.username)
    assert not page.is_visible("#sidebar")
    assert page.is_visible("#sidebar-toggle") and page.is_visible("#message-input") and page.is_visible("#send")
    send(page, "A narrow screen: does a long line like https://example.com/" + "segment/" * 12 + " wrap?")
    wait_status(page, 0, "completed")
    overflow = page.evaluate("""() => [document.documentElement.scrollWidth, document.documentElement.clientWidth,
                                        document.getElementById('scroller').scrollWidth,
                                        document.getElementById('scroller').clientWidth]""")
    assert overflow[0] <= overflow[1] == 375 and overflow[2] <= overflow[3], overflow
    box = page.locator("#composer").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375 and box["y"] + box["height"] <= 740
    shot(page, f"06-narrow-{scheme}")
    page.click("#sidebar-toggle")
    page.wait_for_function("getComputedStyle(document.getElementById('sidebar')).transform === 'none'")
    assert page.is_visible("#sidebar") and page.is_visible("#new-chat")
    shot(page, f"07-narrow-sidebar-{scheme}")
    page.keyboard.press("Escape")
    page.wait_for_function("!document.getElementById('app-view').classList.contains('sidebar-open')")


def test_sse_mode_streams(chat_page, user):
    page = chat_page
    posts, ws_messages = [], []
    page.on("request", lambda r: r.method == "POST" and r.url.endswith("/chat") and posts.append(r.headers))
    page.on("websocket", lambda ws: ws.on("framesent", lambda p: '"message"' in p and ws_messages.append(p)))
    set_mode(page, "sse")
    assert page.is_checked("#mode-sse")
    page.wait_for_function("document.getElementById('status-socket').dataset.state === 'off'")
    send(page, "streamed over server-sent events")
    wait_seq(page, 0, 8)
    assert assistants(page).nth(0).get_attribute("data-status") == "running"
    assert page.get_attribute("#status-stream", "data-state") == "streaming"
    wait_status(page, 0, "completed")
    check_against_api(page, user, 0)
    assert posts and "text/event-stream" in posts[0].get("accept", "")
    assert not ws_messages
    page.reload()
    page.wait_for_selector("#app-view:not([hidden])")
    assert page.is_checked("#mode-sse")  # the choice is remembered
    shot(page, "08-sse-mode-light")


def test_frames_apply_idempotently(make_page, live_server):
    """The generation store: duplicates ignored, a snapshot replaces the text, one done ends it."""
    page = make_page()
    page.goto(f"{live_server.base}/")
    result = page.evaluate("""async () => {
        const { GenStore } = await import('/static/js/gens.js');
        const s = new GenStore(); const g = 'G';
        const c = (seq, chunk) => s.apply({ type: 'chunk', generation_id: g, seq, chunk });
        const log = [];
        s.apply({ type: 'accepted', generation_id: g, position: 1 });
        log.push(s.get(g).status);
        c(1, 'Hel'); c(2, 'lo'); c(1, 'Hel'); c(2, 'lo');
        log.push(s.get(g).text);
        log.push(!!c(4, 'gap').gap);
        s.apply({ type: 'snapshot', generation_id: g, seq: 5, content: 'Hello, wor', status: 'running' });
        c(4, 'ignored'); c(5, 'ignored'); c(6, 'ld'); c(6, 'ld');
        log.push(s.get(g).text);
        s.apply({ type: 'snapshot', generation_id: g, seq: 3, content: 'old', status: 'running' });
        log.push(s.get(g).text);
        s.apply({ type: 'done', generation_id: g, seq: 7, status: 'completed', finish_reason: 'stop' });
        c(8, 'late');
        s.apply({ type: 'done', generation_id: g, seq: 7, status: 'failed', finish_reason: 'error' });
        log.push([s.get(g).text, s.get(g).status, s.get(g).lastSeq, s.unfinished().length]);
        const h = s.ensure('H', { provisional: 'stored so far' });
        log.push(GenStore.display(h));
        s.apply({ type: 'chunk', generation_id: 'H', seq: 1, chunk: 'stored so far, and more' });
        log.push(GenStore.display(h));
        // After a crash: text shown past the last flush is replaced by the stored snapshot,
        // whose seq is above every seq sent, and the done frame names the model.
        const k = (seq, chunk) => s.apply({ type: 'chunk', generation_id: 'K', seq, chunk });
        k(1, 'one '); k(2, 'two '); k(3, 'three');
        s.apply({ type: 'snapshot', generation_id: 'K', seq: 20, content: 'one ', status: 'failed' });
        s.apply({ type: 'done', generation_id: 'K', seq: 21, status: 'failed', finish_reason: 'interrupted',
                  model: 'openai/fake-model' });
        const kg = s.get('K');
        log.push([kg.text, kg.done, kg.status, kg.model]);
        return log;
    }""")
    assert result == [
        "queued",
        "Hello",
        True,
        "Hello, world",
        "Hello, world",
        ["Hello, world", "completed", 7, 0],
        "stored so far",
        "stored so far, and more",
        ["one ", True, "failed", "openai/fake-model"],
    ]


def test_switching_transport_mid_stream(chat_page, user):
    page = chat_page
    send(page, "start on the socket, finish on SSE")
    wait_seq(page, 0, 6)
    set_mode(page, "sse")
    wait_status(page, 0, "completed")
    check_against_api(page, user, 0)
    set_mode(page, "ws")
    page.wait_for_function("document.getElementById('status-socket').dataset.state === 'open'")
    send(page, "and back on the socket")
    wait_status(page, 1, "completed")
    check_against_api(page, user, 1)
    # The server titles a chat after its first message: header and sidebar agree.
    title = user.session(page.evaluate("location.hash.slice(4)"))["title"]
    page.wait_for_function("t => document.getElementById('chat-title').textContent === t", arg=title)


def test_keyboard_only_use(make_page, user, live_server):
    page = make_page()
    page.goto(f"{live_server.base}/")
    page.keyboard.type(user.username)  # the username field has focus
    page.keyboard.press("Tab")
    page.keyboard.type("correct-horse-battery")
    page.keyboard.press("Enter")
    page.wait_for_selector("#app-view:not([hidden])")
    page.focus("#new-chat")
    page.keyboard.press("Tab")  # keyboard focus shows an outline
    focused = page.evaluate("""() => { const e = document.activeElement;
        return [e.id || e.className, getComputedStyle(e).outlineStyle]; }""")
    assert focused[1] == "solid", focused
    page.focus("#new-chat")
    page.keyboard.press("Enter")
    page.wait_for_selector("#settings-dialog[open]")
    page.keyboard.press("Escape")
    page.wait_for_selector("#settings-dialog", state="hidden")
    page.focus("#message-input")
    page.keyboard.type("typed, then Enter")
    page.keyboard.press("Enter")
    wait_status(page, 0, "completed")
