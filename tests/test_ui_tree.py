"""The conversation tree in the web UI (issue 17, points 1, 2 and 10), in Debian's chromium:
Regenerate, Edit message, Continue, retry, the version switcher, the per-message details and
actions on touch, and one Stop while a continuation streams. The service runs in front of the
fake upstream, so each answer's length, pace and failure is chosen by the test."""

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page

from fakeupstream import FakeUpstream

# The import registers these fixtures in this module; a parameter named after one redefines
# the name (F811, noqa'd where it does).
from tests.test_ui_browser import browser, make_page  # noqa: F401 (fixtures)
from tests.ui_support import (
    Api,
    LiveServer,
    assistants,
    send,
    shot,
    sign_in,
    wait_status,
)


@pytest.fixture(scope="module")
def tree_server(tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeUpstream) -> Iterator[LiveServer]:
    srv = LiveServer(
        tmp_path_factory.mktemp("tree") / "data",
        openai_base_url=fake_upstream.openai_base_url,
        openai_api_key="test-key",
        default_model="openai/fake-model",
        provider_retry_backoff=0.05,
    ).start()
    yield srv
    srv.stop()


@pytest.fixture
def fake_says(fake: FakeUpstream) -> Callable[..., None]:
    def say(**options: Any) -> None:
        httpx.post(f"{fake.base_url}/_fake/behaviour", json=options).raise_for_status()

    return say


@pytest.fixture
def person(tree_server: LiveServer) -> Api:
    return Api(tree_server.base).signup()


def page_in(
    make_page: Callable[..., Page],  # noqa: F811
    tree_server: LiveServer,
    person: Api,  # noqa: F811
    **options: Any,
) -> Page:
    page = make_page(**options)
    sign_in(page, tree_server.base, person.username)
    return page


def shows(page: Page, text: str) -> None:
    """Waits until the first answer shown is `text`."""
    page.wait_for_function("t => document.querySelector('[data-role=assistant]')?.dataset.raw === t", arg=text)


def label_of(msg: Locator) -> str:
    return msg.locator("[data-testid=version-label]").text_content()


def test_regenerate_keeps_versions_and_the_switch_is_stored(
    make_page: Callable[..., Page],  # noqa: F811
    tree_server: LiveServer,  # noqa: F811
    person: Api,
    fake_says: Callable[..., None],
) -> None:
    fake_says(text="The first answer.")
    page = page_in(make_page, tree_server, person)
    send(page, "Say something")
    wait_status(page, 0, "completed")
    first_id = assistants(page).nth(0).get_attribute("data-generation-id")
    fake_says(text="The second answer.")
    answer = assistants(page).nth(0)
    answer.hover()
    answer.get_by_role("button", name="Regenerate").click()
    shows(page, "The second answer.")
    answer = assistants(page).nth(0)
    assert label_of(answer) == "2 / 2" and assistants(page).count() == 1
    assert answer.get_by_role("button", name="Next version").is_disabled()
    shot(page, "30-tree-regenerated")
    answer.get_by_role("button", name="Previous version").click()
    shows(page, "The first answer.")
    assert label_of(assistants(page).nth(0)) == "1 / 2"
    assert assistants(page).nth(0).get_attribute("data-generation-id") == first_id
    page.reload()  # stored on the server: a reload (or another device) shows the same version
    wait_status(page, 0, "completed")
    assert assistants(page).nth(0).get_attribute("data-raw") == "The first answer."
    assert label_of(assistants(page).nth(0)) == "1 / 2"
    other = page_in(make_page, tree_server, person)
    other.click(".session-open")
    wait_status(other, 0, "completed")
    assert assistants(other).nth(0).get_attribute("data-raw") == "The first answer."


def test_edit_opens_a_focused_box_and_saving_makes_a_new_branch(
    make_page: Callable[..., Page],  # noqa: F811
    tree_server: LiveServer,  # noqa: F811
    person: Api,
    fake_says: Callable[..., None],
) -> None:
    fake_says(text="Answer one.")
    page = page_in(make_page, tree_server, person)
    send(page, "My first question")
    wait_status(page, 0, "completed")
    mine = page.locator("[data-role=user]").nth(0)
    mine.hover()
    mine.get_by_role("button", name="Edit message").click()
    box = page.get_by_role("textbox", name="Edit your message")
    assert box.evaluate("e => e === document.activeElement") and box.input_value() == "My first question"
    fake_says(text="Answer two.")
    box.fill("My better question")
    page.get_by_role("button", name="Save").click()
    shows(page, "Answer two.")
    mine = page.locator("[data-role=user]").nth(0)
    assert mine.locator(".msg-body").text_content() == "My better question" and label_of(mine) == "2 / 2"
    mine.get_by_role("button", name="Previous version").click()  # the old branch is still there
    shows(page, "Answer one.")
    assert page.locator("[data-role=user] .msg-body").text_content() == "My first question"
    # Esc closes the box and changes nothing.
    mine = page.locator("[data-role=user]").nth(0)
    mine.hover()
    mine.get_by_role("button", name="Edit message").click()
    page.keyboard.press("Escape")
    assert page.locator(".msg-editor").count() == 0 and page.locator("[data-role=user]").count() == 1


def test_continue_an_answer_cut_short_streams_with_one_stop(
    make_page: Callable[..., Page],  # noqa: F811
    tree_server: LiveServer,  # noqa: F811
    person: Api,
    fake_says: Callable[..., None],
) -> None:
    person.create_session(model_name="openai/fake-model", max_tokens=4, title="short")
    fake_says(n=40)
    page = page_in(make_page, tree_server, person, permissions=["clipboard-read", "clipboard-write"])
    page.click(".session-open")
    send(page, "A long story, please")
    assert wait_status(page, 0, "incomplete") == "incomplete"
    cut = assistants(page).nth(0)
    assert cut.get_attribute("data-raw") == "t0 t1 t2 t3 "
    # Stopped here at max_tokens, before the provider's usage: the service counted, and says so.
    assert cut.locator("[data-testid=msg-usage]").text_content().endswith("tokens (estimated)")
    assert not cut.get_by_role("button", name="Continue").is_hidden()
    fake_says(n=40, tps=3)  # its 4 tokens take over a second: time to look at it streaming
    cut.hover()
    cut.get_by_role("button", name="Continue").click()
    page.wait_for_function("() => document.querySelectorAll('[data-role=assistant]').length === 2")
    wait_status(page, 1, "running")
    page.wait_for_function("() => document.querySelectorAll('[data-role=assistant]')[1].dataset.raw.length > 0")
    # While it streams: one Stop, no second typing line, the caret inline in the text.
    assert page.get_by_role("button", name="Stop").count() == 1 and not page.is_visible("#typing")
    caret = "e => getComputedStyle(e.querySelector('.msg-body > :last-child'), '::after').display"
    assert assistants(page).nth(1).evaluate(caret) == "inline-block"
    shot(page, "31-tree-continuing")
    assert wait_status(page, 1, "incomplete") == "incomplete"
    more = assistants(page).nth(1)
    assert "continuation" in more.get_attribute("class")
    assert assistants(page).nth(0).get_attribute("data-continued") == "true"
    assert cut.get_by_role("button", name="Continue").is_hidden()  # continued: its own button goes
    assert not more.get_by_role("button", name="Continue").is_hidden()  # and the rest can go on
    # Shown as one answer: the continuation starts where the answer ends, and copies whole.
    gap = page.evaluate("""() => { const [a, b] = document.querySelectorAll('[data-role=assistant]');
        const box = (m) => m.querySelector('.msg-body').getBoundingClientRect();
        return box(b).top - box(a).bottom; }""")
    assert gap < 30, gap
    more.hover()
    more.get_by_role("button", name="Copy message").click()
    page.wait_for_function("() => navigator.clipboard.readText().then((t) => t === 't0 t1 t2 t3 t0 t1 t2 t3 ')")


def test_retry_a_failed_answer_and_per_message_details_on_touch(
    make_page: Callable[..., Page],  # noqa: F811
    tree_server: LiveServer,  # noqa: F811
    person: Api,
    fake_says: Callable[..., None],
) -> None:
    fake_says(status=400)
    page = page_in(
        make_page, tree_server, person, viewport={"width": 390, "height": 780}, is_mobile=True, has_touch=True
    )
    send(page, "Will this work?")
    assert wait_status(page, 0, "failed") == "failed"
    fake_says(text="It works now.")
    failed = assistants(page).nth(0)
    # Touch screens have no hover: the actions are shown as they are.
    assert failed.locator(".msg-actions").evaluate("e => getComputedStyle(e).opacity") == "1"
    assert failed.get_by_role("button", name="Continue").is_hidden()  # a failure is retried, not continued
    failed.get_by_role("button", name="Regenerate").tap()
    shows(page, "It works now.")
    page.reload()
    wait_status(page, 0, "completed")
    answer = assistants(page).nth(0)
    assert label_of(answer) == "2 / 2"
    assert answer.locator("[data-testid=msg-model]").text_content() == "openai/fake-model"
    assert answer.locator("[data-testid=msg-usage]").text_content() == "3 in · 3 out tokens"  # the provider's
    assert answer.locator("[data-testid=msg-time]").get_attribute("datetime")
    for name in ("Copy message", "Regenerate"):
        assert answer.get_by_role("button", name=name).is_visible()
    assert page.locator("[data-role=user]").get_by_role("button", name="Edit message").is_visible()
    shot(page, "32-tree-touch")
