"""The web UI's daily-use features (issue 17, points 2, 3, 5-9) in a real browser: settings
panel and theme, connection banner, the composer's limit and refused text, per-message actions,
Markdown extras, keyboard shortcuts, chat URLs and export, and an axe-core accessibility run."""

import json
import re
from pathlib import Path

import pytest

from tests.test_ui_browser import browser, live_server, make_page, user  # noqa: F401 (fixtures)
from tests.ui_support import assistants, send, shot, sign_in, wait_seq, wait_status

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
BG = "getComputedStyle(document.body).backgroundColor"
DARK_BG, LIGHT_BG = "rgb(21, 23, 28)", "rgb(255, 255, 255)"

# The WebSocket, wrapped so a test can hold the connection down: while window.__block is set,
# every new socket asks for a path with no WebSocket route and its handshake fails, as it
# would with the server unreachable (same origin, so the page's CSP allows the attempt).
HOLDABLE_SOCKET = """(() => {
    const Native = window.WebSocket; window.__sockets = []; window.__block = false;
    window.WebSocket = class extends Native {
        constructor(url, protocols) {
            super(window.__block ? `ws://${location.host}/no-socket-here` : url, protocols);
            window.__sockets.push(this);
        } };
})()"""


def page_for(make_page, live_server, user, **options):  # noqa: F811
    page = make_page(**options)
    sign_in(page, live_server.base, user.username)
    return page


def test_settings_panel_holds_transport_status_and_theme(make_page, live_server, user):  # noqa: F811
    page = page_for(
        make_page, live_server, user, viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True
    )
    send(page, "a chat, so the header has its title, model and export")
    wait_status(page, 0, "completed")
    # The header is one row at 375 px: every visible control shares the top bar's line.
    rows = page.evaluate("""() => { const bar = document.querySelector('.topbar').getBoundingClientRect();
        return [...document.querySelectorAll('.topbar > *')].filter((e) => e.offsetParent)
            .map((e) => { const r = e.getBoundingClientRect();
                return [e.id || e.className, r.top, r.bottom, bar.height]; }); }""")
    assert all(top >= 0 and bottom <= height + 1 for _, top, bottom, height in rows), rows
    assert rows[0][3] <= 60, rows
    assert not page.is_visible("#mode-switch") and not page.is_visible("#status-socket")
    page.get_by_role("button", name="Settings", exact=True).click()
    page.wait_for_selector("#app-settings[open]")
    assert page.is_visible("#mode-switch") and page.is_visible("#status-socket")
    assert page.get_attribute("#status-socket", "data-state") == "open"
    shot(page, "12-settings-narrow-light")
    assert page.evaluate(BG) == LIGHT_BG
    page.click("label[for=theme-dark]")
    assert page.evaluate(BG) == DARK_BG
    page.keyboard.press("Escape")
    page.wait_for_selector("#app-settings", state="hidden")
    page.reload()
    page.wait_for_selector("#app-view:not([hidden])")
    assert page.evaluate(BG) == DARK_BG  # the choice is kept
    page.emulate_media(color_scheme="dark")
    page.get_by_role("button", name="Settings", exact=True).click()
    page.click("label[for=theme-light]")
    assert page.evaluate(BG) == LIGHT_BG  # light wins over a dark system
    page.click("label[for=theme-system]")
    assert page.evaluate(BG) == DARK_BG  # system follows prefers-color-scheme
    page.emulate_media(color_scheme="light")
    page.wait_for_function("b => getComputedStyle(document.body).backgroundColor === b", arg=LIGHT_BG)


def test_reconnecting_banner_and_messages_waiting_for_the_socket(make_page, live_server, user):  # noqa: F811
    page = make_page()
    page.add_init_script(HOLDABLE_SOCKET)
    sign_in(page, live_server.base, user.username)
    send(page, "first, while connected")
    wait_status(page, 0, "completed")
    assert page.is_hidden("#conn-banner")
    page.evaluate("window.__block = true; window.__sockets.at(-1).close(4000, 'test drop')")
    page.wait_for_selector("#conn-banner:not([hidden])")
    assert page.inner_text("#conn-banner").strip() == "Reconnecting…"
    assert page.get_attribute("#open-settings", "data-conn") == "down"
    send(page, "typed while the socket is down")
    waiting = page.locator("[data-role=user]").nth(1)
    page.wait_for_function("() => document.querySelectorAll('[data-role=user]')[1]?.dataset.status === 'waiting'")
    assert waiting.locator("[data-testid=msg-status]").text_content() == "Waiting for connection"
    shot(page, "13-reconnecting-light")
    assert assistants(page).count() == 1
    page.evaluate("window.__block = false; window.dispatchEvent(new Event('online'))")
    page.wait_for_selector("#conn-banner", state="hidden")
    wait_status(page, 1, "completed")
    assert waiting.get_attribute("data-status") == "sent"
    assert "typed while the socket is down" in assistants(page).nth(1).get_attribute("data-raw")


def test_composer_limit_counter_refused_text_and_show_more(make_page, live_server, user):  # noqa: F811
    page = page_for(make_page, live_server, user)
    page.wait_for_function("document.getElementById('composer-count').textContent.endsWith('/ 32,000')")
    page.fill("#message-input", "x" * 32_001)  # one over the server's MAX_MESSAGE_CHARS
    assert page.get_attribute("#composer-count", "data-over") == "true"
    assert page.is_disabled("#send")
    assert "1 characters over the limit of 32,000" in page.inner_text("#composer-error")
    page.press("#message-input", "Enter")
    assert page.locator("[data-role=user]").count() == 0
    assert len(page.input_value("#message-input")) == 32_001  # nothing cut, nothing lost

    long_text = "\n".join(f"line {i} of a long pasted log" for i in range(40))
    page.fill("#message-input", long_text)
    page.press("#message-input", "Enter")
    msg = page.locator("[data-role=user]").nth(0)
    assert msg.get_attribute("data-collapsed") == "true"
    folded = msg.locator(".msg-body").evaluate("e => e.clientHeight < e.scrollHeight")
    more = msg.locator("[data-testid=show-more]")
    assert more.text_content() == "Show more"
    more.click()
    assert msg.get_attribute("data-collapsed") == "false" and folded
    assert more.get_attribute("aria-expanded") == "true" and more.text_content() == "Show less"
    wait_status(page, 0, "completed")


def test_a_refused_message_comes_back_into_the_composer(make_page, live_server, user):  # noqa: F811
    """The server refuses (here: a client that believes the limit is higher than the server's)."""
    page = make_page()

    def bigger_limit(route):
        body = route.fetch().json()
        body["limits"]["max_message_chars"] = 100_000
        route.fulfill(json=body)

    page.route("**/help", bigger_limit)
    sign_in(page, live_server.base, user.username)
    page.wait_for_function("document.getElementById('composer-count').textContent.endsWith('/ 100,000')")
    text = "y" * 32_001
    send(page, text)
    rejected = page.locator("[data-role=user][data-status=rejected]")
    rejected.wait_for()
    assert rejected.locator("[data-testid=msg-status]").text_content() == "Not sent"
    page.wait_for_function("t => document.getElementById('message-input').value === t", arg=text)
    reason = page.inner_text("[data-testid=composer-error]")
    assert reason.startswith("Not sent:") and "32000" in reason.replace(",", ""), reason
    shot(page, "14-refused-light")
    page.fill("#message-input", "shorter")
    assert page.is_hidden("[data-testid=composer-error]")  # the reason goes once the user edits


def test_message_model_usage_time_and_copy(make_page, live_server, user):  # noqa: F811
    page = page_for(make_page, live_server, user, permissions=["clipboard-read", "clipboard-write"])
    send(page, "Give me **bold** text and a `code` span")
    wait_status(page, 0, "completed")
    msg = assistants(page).nth(0)
    gen = user.generation(msg.get_attribute("data-generation-id"))
    usage = gen["usage"]
    shown = msg.locator("[data-testid=msg-usage]").text_content()
    expected = f"{usage['prompt_tokens']} in · {usage['completion_tokens']} out tokens"
    assert shown == expected + (" (estimated)" if usage.get("estimated") else ""), (shown, usage)
    assert msg.locator("[data-testid=msg-model]").text_content() == gen["model"]
    assert msg.locator("[data-testid=msg-time]").get_attribute("datetime")
    msg.hover()
    msg.get_by_role("button", name="Copy message").click()
    page.wait_for_function("() => document.querySelector('[data-role=assistant] .msg-copy').dataset.copied === 'true'")
    assert page.evaluate("navigator.clipboard.readText()") == gen["content"]  # Markdown source
    mine = page.locator("[data-role=user]").nth(0)
    mine.hover()
    mine.get_by_role("button", name="Copy message").click()
    page.wait_for_function("() => navigator.clipboard.readText().then((t) => t.startsWith('Give me **bold**'))")


def test_markdown_alignment_math_and_removed_links(make_page, live_server):  # noqa: F811
    page = make_page()
    page.goto(f"{live_server.base}/")
    page.wait_for_function("!!window.katex")
    out = page.evaluate("""async () => {
        const { renderMarkdown } = await import('/static/js/markdown.js');
        const box = document.createElement('div'); box.className = 'md';
        document.body.append(box);
        box.append(renderMarkdown('| l | c | r |\\n|:--|:-:|--:|\\n| 1 | 2 | 3 |\\n\\n'
            + 'Inline $x^2 + y_1$ costs $5 and $10.\\n\\n$$\\\\frac{a}{b}$$\\n\\n'
            + '[click](javascript:alert(1)) and [ok](https://example.org/x)'));
        const align = [...box.querySelectorAll('td')].map((td) => getComputedStyle(td).textAlign);
        return { align, inline: box.querySelectorAll('p:not(.math-display) .katex').length,
                 display: box.querySelectorAll('.math-display .katex-display').length,
                 money: box.textContent.includes('costs $5 and $10'),
                 anchors: [...box.querySelectorAll('a')].map((a) => a.textContent),
                 removed: [...box.querySelectorAll('.link-removed')].map((s) => s.textContent),
                 styled: box.querySelectorAll('.katex [style]').length > 0 };
    }""")
    assert out["align"] == ["left", "center", "right"], out
    assert out["inline"] == 1 and out["display"] == 1 and out["money"], out
    assert out["anchors"] == ["ok"] and out["removed"] == ["click"], out
    assert out["styled"]  # KaTeX laid it out (its sizes are CSSOM styles)


def test_jump_to_latest_while_streaming(make_page, live_server, user):  # noqa: F811
    page = page_for(make_page, live_server, user, viewport={"width": 900, "height": 420})
    send(page, "please write a long answer about scrolling")
    page.wait_for_function(
        """() => { const s = document.getElementById('scroller');
        return s.scrollHeight > s.clientHeight + 150; }""",
        timeout=30000,
    )
    assert assistants(page).nth(0).get_attribute("data-status") == "running"
    assert page.is_hidden("#jump-latest")
    page.eval_on_selector("#scroller", "e => { e.scrollTop = 0; }")
    page.wait_for_selector("#jump-latest:not([hidden])")
    page.get_by_role("button", name="Jump to latest message").click()
    at_bottom = "e => e.scrollHeight - e.scrollTop - e.clientHeight < 120"
    assert page.eval_on_selector("#scroller", at_bottom)
    wait_status(page, 0, "completed")
    assert page.is_hidden("#jump-latest")


def test_keyboard_shortcuts(make_page, live_server, user):  # noqa: F811
    page = page_for(make_page, live_server, user)
    send(page, "please write a long answer, then I press Esc")
    wait_seq(page, 0, 4)
    page.keyboard.press("Escape")
    wait_status(page, 0, "cancelled")
    page.focus("#message-input")
    assert page.input_value("#message-input") == ""
    page.keyboard.press("ArrowUp")
    assert page.input_value("#message-input") == "please write a long answer, then I press Esc"
    page.fill("#message-input", "")
    page.focus("#new-chat")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "message-input"
    assert page.input_value("#message-input") == ""  # the / was not typed
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("Shift+?")
    page.wait_for_selector("#shortcuts-dialog[open]")
    listed = page.inner_text("[data-testid=shortcuts]")
    for key in ("Esc", "↑", "Ctrl", "/", "?"):
        assert key in listed
    shot(page, "15-shortcuts-light")
    page.keyboard.press("Escape")
    page.wait_for_selector("#shortcuts-dialog", state="hidden")
    page.keyboard.press("Control+Shift+O")
    page.wait_for_selector("#settings-dialog[open]")
    assert page.inner_text("#cfg-heading") == "New chat"


def test_chat_urls_links_back_forward_and_export(make_page, live_server, user, tmp_path):  # noqa: F811
    a = user.create_session(title="Chat A")["session_id"]
    b = user.create_session(title="Chat B")["session_id"]
    page = page_for(make_page, live_server, user)
    link_a = page.locator(f"[data-session-id='{a}'] a.session-open")
    assert link_a.get_attribute("href") == f"#/s/{a}"
    link_a.click()
    page.wait_for_function("t => document.getElementById('chat-title').textContent === t", arg="Chat A")
    page.locator(f"[data-session-id='{b}'] a.session-open").click()
    page.wait_for_function("t => document.getElementById('chat-title').textContent === t", arg="Chat B")
    send(page, "Export **this** chat")
    wait_status(page, 0, "completed")
    page.go_back()
    page.wait_for_function("t => document.getElementById('chat-title').textContent === t", arg="Chat A")
    assert page.evaluate("location.hash") == f"#/s/{a}"
    page.go_forward()
    page.wait_for_function("t => document.getElementById('chat-title').textContent === t", arg="Chat B")
    page.reload()
    page.wait_for_selector("[data-role=assistant][data-status=completed]")
    assert page.inner_text("#chat-title") == "Chat B" and page.evaluate("location.hash") == f"#/s/{b}"

    stored = user.session(b)
    files = {}
    for fmt in ("md", "json"):
        page.get_by_role("button", name="Export chat").click()
        with page.expect_download() as dl:
            page.get_by_role("menuitem", name=re.compile(fmt, re.I)).click()
        path = tmp_path / dl.value.suggested_filename
        dl.value.save_as(path)
        files[fmt] = path
    assert files["md"].name == "chat-b.md" and files["json"].name == "chat-b.json"
    assert json.loads(files["json"].read_text()) == stored
    md = files["md"].read_text()
    reply = stored["history"][1]["content"]
    assert md.startswith("# Chat B\n") and "Export **this** chat" in md and reply in md


def axe(page, context: str = "document") -> list:
    if not page.evaluate("!!window.axe"):
        page.add_script_tag(path=str(AXE))
    found = page.evaluate(f"""async () => (await axe.run({context}, {{ resultTypes: ['violations'] }}))
        .violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => [v.id, v.impact, v.nodes.map((n) => n.target.join(' ')).slice(0, 3)])""")
    return found


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_accessibility_violations(make_page, live_server, user, scheme):  # noqa: F811
    page = make_page(color_scheme=scheme, bypass_csp=True)
    page.goto(f"{live_server.base}/")
    page.wait_for_selector("#auth-view:not([hidden])")
    assert axe(page) == [], "sign-in view"
    sign_in(page, live_server.base, user.username)
    send(page, "A table | and `code`, please")
    wait_status(page, 0, "completed")
    for name in ("New chat", "Settings", "Export chat", "Send message", "Sign out"):
        assert page.get_by_role("button", name=name, exact=True).count() == 1, name
    assert page.get_by_role("button", name="Copy message").count() == 2
    assert axe(page) == [], "conversation"
    page.get_by_role("button", name="Settings", exact=True).click()
    assert axe(page) == [], "settings panel"
    page.keyboard.press("Escape")
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("Shift+?")
    assert axe(page) == [], "shortcuts dialog"
    page.keyboard.press("Escape")
    page.click("#new-chat")
    page.wait_for_selector("#settings-dialog[open]")
    assert axe(page) == [], "new chat dialog"
