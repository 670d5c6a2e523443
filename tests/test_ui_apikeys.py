"""The API keys panel of the web UI in a real browser (issue 13.1): create a key, see it once
and copy it, use it, revoke it."""

import httpx

from tests.test_ui_browser import browser, live_server, make_page, user  # noqa: F401 (fixtures)
from tests.ui_support import shot, sign_in


def test_create_copy_use_and_revoke_a_key(make_page, user, live_server):  # noqa: F811
    page = make_page(permissions=["clipboard-read", "clipboard-write"])
    sign_in(page, live_server.base, user.username)
    page.get_by_role("button", name="API keys").click()
    page.wait_for_selector("#keys-dialog[open]")
    page.wait_for_selector("#key-empty:not([hidden])")
    page.get_by_label("Name", exact=True).fill("browser key")
    page.get_by_label("Expires in days").fill("30")
    page.get_by_role("button", name="Create key").click()
    page.wait_for_selector("#key-created:not([hidden])")
    key = page.input_value("[data-testid=new-api-key]")
    assert key.startswith("sk-chat-")
    page.get_by_role("button", name="Copy the new API key").click()
    page.wait_for_function("document.getElementById('key-copy').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == key
    item = page.locator("[data-testid=api-key-item]")
    assert item.count() == 1 and "browser key" in item.inner_text() and key not in item.inner_text()
    shot(page, "20-api-keys-panel")
    as_key = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{live_server.base}/sessions", headers=as_key).status_code == 200

    page.get_by_role("button", name="Revoke API key browser key").click()
    page.wait_for_selector("#confirm-dialog[open]")
    page.click("#confirm-ok")
    page.wait_for_selector("[data-testid=api-key-item]", state="detached")
    assert httpx.get(f"{live_server.base}/sessions", headers=as_key).status_code == 401
    assert page.input_value("[data-testid=new-api-key]") == key  # still shown until the panel closes
    page.get_by_role("button", name="Close").click()
    page.wait_for_selector("#keys-dialog", state="hidden")
    assert page.input_value("[data-testid=new-api-key]") == ""  # the secret left the page
