"""The chats sidebar in a real browser (issue 17.3, 17.9): ordered by last activity with the
time of the last message, search across titles and message text, first-words titles, and no
serious accessibility violation on the search view."""

from datetime import datetime, timedelta

import pytest

# The import registers these fixtures in this module; a parameter named after one redefines
# the name (F811, noqa'd where it does).
from tests.test_ui_browser import browser, live_server, make_page, user  # noqa: F401 (fixtures)
from tests.test_ui_features import axe
from tests.ui_support import open_session, send, shot, sign_in, wait_status

ITEMS = "[data-testid=session-item]"


def _chat(user, title: str, *messages: str) -> str:  # noqa: F811
    sid = user.create_session(**({"title": title} if title else {}))["session_id"]
    for text in messages:
        assert user.http.post("/chat", json={"session_id": sid, "message": text}).status_code == 200
    return sid


def _when(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _order(page) -> list[str]:
    return page.eval_on_selector_all(ITEMS, "els => els.map((e) => e.dataset.sessionId)")


def test_order_search_and_titles(make_page, user, live_server):  # noqa: F811
    fruit = _chat(user, "", "How do I grow kiwifruit on a balcony?")
    trip = _chat(user, "Lisbon weekend", "Trams and pastries")
    page = make_page()
    sign_in(page, live_server.base, user.username)
    page.wait_for_function(f"document.querySelectorAll('{ITEMS}').length === 2")
    assert _order(page) == [trip, fruit]
    listed = {s["session_id"]: s for s in user.http.get("/sessions").json()["items"]}
    shown = page.get_attribute(f"[data-session-id='{fruit}'] time", "datetime")  # the last message's time
    assert abs(_when(shown) - _when(listed[fruit]["last_message_at"])) < timedelta(milliseconds=1)
    assert page.inner_text(f"[data-session-id='{fruit}'] .session-title") == "How do I grow kiwifruit on a balcony?"

    # A new message moves its chat to the top.
    open_session(page, fruit)
    send(page, "and in winter?")
    wait_status(page, 1, "completed")
    page.wait_for_function(
        "id => document.querySelector('[data-testid=session-item]').dataset.sessionId === id", arg=fruit
    )

    box = page.get_by_role("searchbox", name="Search chats")
    box.fill("kiwi")
    page.wait_for_function(f"document.querySelectorAll('{ITEMS}').length === 1")
    assert _order(page) == [fruit]
    hit = page.locator(f"[data-session-id='{fruit}'] .session-snippet")
    assert "kiwi" in hit.inner_text().lower() and hit.locator("mark").count() >= 1
    assert page.inner_text("#search-status") == "1 chat found"
    shot(page, "42-search-light")
    box.fill("lisbon")  # a title
    page.wait_for_function(
        "id => [...document.querySelectorAll('[data-testid=session-item]')]"
        ".map((e) => e.dataset.sessionId).join() === id",
        arg=trip,
    )
    box.fill("<img src=x onerror=alert(1)>")  # shown as text, never parsed
    page.wait_for_selector("#session-empty:not([hidden])")
    assert "<img src=x" in page.inner_text("#session-empty")
    box.press("Escape")
    page.wait_for_function(f"document.querySelectorAll('{ITEMS}').length === 2")
    assert page.is_hidden("#search-status")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_search_view_accessibility(make_page, user, live_server, scheme):  # noqa: F811
    _chat(user, "", "Searching for kiwifruit notes")
    page = make_page(color_scheme=scheme, bypass_csp=True)
    sign_in(page, live_server.base, user.username)
    page.wait_for_selector(ITEMS)
    for role, name in (("searchbox", "Search chats"), ("button", "New chat"), ("search", "Search chats")):
        assert page.get_by_role(role, name=name, exact=True).count() == 1, name
    page.get_by_role("searchbox", name="Search chats").fill("kiwi")
    page.wait_for_selector(".session-snippet mark")
    assert axe(page) == [], "search results"
    open_session(page, page.get_attribute(ITEMS, "data-session-id"))
    page.wait_for_selector("#export-chat:not([hidden])")
    assert page.get_by_role("button", name="Export chat", exact=True).count() == 1
    page.get_by_role("button", name="Settings", exact=True).click()
    page.wait_for_selector("#app-settings[open]")
    assert axe(page) == [], "settings with the API keys entry"
    page.locator("#app-settings").get_by_role("button", name="API keys").click()
    page.wait_for_selector("#keys-dialog[open]")
    assert axe(page) == [], "API keys panel"
    if scheme == "dark":
        shot(page, "43-api-keys-from-settings-dark")
