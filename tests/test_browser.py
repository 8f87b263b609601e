"""What a person sees in Chromium, with two tabs open on one server.

Each tab is its own browser context, so its own Streamlit session (as two
browser windows would be). Every check is on the rendered page through
Playwright's auto-waiting ``expect``: a value written in one tab has to show
up in the other with no interaction there, which is the whole point of
server_state. One server per test, so each test starts from an empty state.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from harness import STREAMLIT_RELEASE, StreamlitServer, streamlit_since
from harness.browser import wait_for_app_idle
from playwright.sync_api import Browser, Locator, Page, expect

pytestmark = [pytest.mark.server, pytest.mark.browser, pytest.mark.usefixtures("expect_timeout")]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
APPS = Path(__file__).resolve().parent / "apps"

# Generous: CI has 2 cores, and a pushed rerun is a round trip through the
# server and a script run. These bound a failure, not a passing test (the
# same as conftest's BROWSER_TIMEOUT_MS for every ``expect``).
TIMEOUT_MS = 30_000


def open_tab(browser: Browser, server: StreamlitServer) -> Page:
    """A new context (cookies and all: a separate session) showing the app."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(60_000)
    page = context.new_page()
    page.goto(server.url)
    wait_for_app_idle(page, 60_000)
    return page


def close_tabs(*pages: Page) -> None:
    for page in pages:
        page.context.close()


def assert_no_exception(*pages: Page) -> None:
    for page in pages:
        expect(page.get_by_test_id("stException")).to_have_count(0)


@contextmanager
def server_log_on_failure(server: StreamlitServer) -> Iterator[None]:
    """Add the server's log tail to a failing assertion (an exception in the
    script, or in server_state's rerun machinery, shows up there)."""
    try:
        yield
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- server log tail ---\n{server.log_tail()}") from exc


# -- 1. global counter ------------------------------------------------------


def button(page: Page, name: str) -> Locator:
    # Scoped to st.button: st.number_input's +/- are also buttons named
    # "Increment"/"Decrement".
    return page.get_by_test_id("stButton").get_by_role("button", name=name, exact=True)


def count(page: Page) -> Locator:
    """The number in "Count = `N`"."""
    return page.get_by_test_id("stMarkdownContainer").filter(has_text="Count =").locator("code")


def test_counter_in_two_tabs(browser: Browser) -> None:
    with StreamlitServer(EXAMPLES / "global_counter.py") as server, server_log_on_failure(server):
        a = open_tab(browser, server)
        b = open_tab(browser, server)
        try:
            expect(count(a)).to_have_text(re.compile(r"^-?\d+$"))
            n = int(count(a).inner_text())
            expect(count(b)).to_have_text(str(n))

            for i in range(1, 4):
                button(a, "Increment").click()
                expect(count(a)).to_have_text(str(n + i))
                wait_for_app_idle(a, TIMEOUT_MS)

            # B was not touched: the change was pushed to it.
            expect(count(b)).to_have_text(str(n + 3))
            wait_for_app_idle(b, TIMEOUT_MS)

            button(b, "Decrement").click()
            expect(count(b)).to_have_text(str(n + 2))
            expect(count(a)).to_have_text(str(n + 2))

            # Settled: both tabs idle and showing the same number, once each.
            wait_for_app_idle(a, TIMEOUT_MS)
            wait_for_app_idle(b, TIMEOUT_MS)
            for page in (a, b):
                expect(count(page)).to_have_count(1)
                expect(count(page)).to_have_text(str(n + 2))
            assert count(a).inner_text() == count(b).inner_text() == str(n + 2)
            assert_no_exception(a, b)
        finally:
            close_tabs(a, b)


# -- 2. chat ----------------------------------------------------------------


def messages(page: Page) -> Locator:
    """The chat lines: the only st.markdown elements of the app (the title is
    a heading, the labels are widget labels)."""
    return page.get_by_test_id("stMarkdown")


def line(page: Page, text: str) -> Locator:
    """The message lines whose whole text is ``text`` ("name: message")."""
    return messages(page).filter(has_text=re.compile(rf"^\s*{re.escape(text)}\s*$"))


def set_name(page: Page, name: str) -> None:
    field = page.get_by_label("Your name", exact=True)
    field.fill(name)
    field.press("Enter")  # commits the value (a rerun), as a person would by Enter
    wait_for_app_idle(page, TIMEOUT_MS)
    expect(field).to_have_value(name)


def type_message(page: Page, text: str) -> None:
    """Type into "Message" without committing: the Send click commits it (blur)."""
    page.get_by_label("Message", exact=True).fill(text)


def send(page: Page) -> None:
    page.get_by_test_id("stButton").get_by_role("button", name="Send", exact=True).click()


@streamlit_since((1, 44), "old frontends lose text on type-then-click (1.37-1.40), double clicks (1.43)")
def test_chat_in_two_tabs(browser: Browser) -> None:
    with StreamlitServer(EXAMPLES / "chat.py") as server, server_log_on_failure(server):
        a = open_tab(browser, server)
        b = open_tab(browser, server)
        try:
            expect(messages(a)).to_have_count(0)
            expect(messages(b)).to_have_count(0)
            set_name(a, "Alice")
            set_name(b, "Bob")

            # A sends; B sees it without doing anything.
            type_message(a, "hello from A")
            send(a)
            expect(messages(a)).to_have_text(["Alice: hello from A"])
            expect(a.get_by_label("Message", exact=True)).to_have_value("")
            expect(messages(b)).to_have_text(["Alice: hello from A"])
            expect(messages(a).first.locator("strong")).to_have_text("Alice")  # **name** is bold

            # B replies; A sees it below the first message.
            wait_for_app_idle(b, TIMEOUT_MS)
            type_message(b, "reply from B")
            send(b)
            both = ["Alice: hello from A", "Bob: reply from B"]
            expect(messages(b)).to_have_text(both)
            expect(messages(a)).to_have_text(both)

            # Both send at about the same time: no waiting between the clicks.
            wait_for_app_idle(a, TIMEOUT_MS)
            wait_for_app_idle(b, TIMEOUT_MS)
            type_message(a, "same time A")
            type_message(b, "same time B")
            send(a)
            send(b)
            expected = [*both, "Alice: same time A", "Bob: same time B"]
            for page in (a, b):
                expect(messages(page)).to_have_count(4)
            # Settled: nothing more arrives after both tabs are idle.
            for page in (a, b):
                wait_for_app_idle(page, TIMEOUT_MS)
            for page in (a, b):
                expect(messages(page)).to_have_count(4)
                # The first two in order; the simultaneous two in either order.
                expect(messages(page).nth(0)).to_have_text(both[0])
                expect(messages(page).nth(1)).to_have_text(both[1])
                for text in expected:
                    expect(line(page, text)).to_have_count(1)
                # The sender's own run cleared its Message box. A rerun pushed
                # before that run's messages reached the browser would make
                # Streamlit drop them from its queue, and one pushed before
                # the browser drew them would replace the cleared box undrawn:
                # either way the box would keep the sent text. The library
                # waits for the session to settle, then for the browser to draw.
                expect(page.get_by_label("Message", exact=True)).to_have_value("")
            assert_no_exception(a, b)
        finally:
            close_tabs(a, b)


@streamlit_since((1, 44), "old frontends lose text on type-then-click (1.37-1.40), double clicks (1.43)")
@pytest.mark.releases
def test_box_cleared_by_its_callback_stays_cleared_when_a_rerun_follows(browser: Browser) -> None:
    """Each send clears the box in its callback, and a thread commits a key
    the page shows as that run ends: the session is rerun as soon as it
    settles. The browser takes the cleared value only when it draws the
    send's run; a rerun whose elements arrive first replaces it undrawn.
    The tab's CPU is slowed 10x (a busy laptop), which widens that window:
    without the library's hold, one send in five kept its text on 1.66 and
    one in ten on 1.67 (this test failed 2 runs in 3 on 1.66)."""
    with StreamlitServer(APPS / "clear_box_app.py") as server, server_log_on_failure(server):
        page = open_tab(browser, server)
        try:
            page.context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": 10})
            box = page.get_by_label("Message", exact=True)
            for i in range(1, 16):
                box.fill(f"message {i}")
                send(page)
                expect(page.get_by_text(f"echo {i}", exact=True)).to_have_count(1)  # the rerun was drawn
                wait_for_app_idle(page, TIMEOUT_MS)
                expect(box).to_have_value("")
            expect(page.get_by_text("sent 15", exact=True)).to_have_count(1)
            assert_no_exception(page)
        finally:
            close_tabs(page)


# -- 3. read-only values rendered by Streamlit elements ----------------------


@streamlit_since((1, 61), "the radio DOM it reads (test id stRadioOption): in 1.61, not in 1.57")
def test_read_only_values_render(browser: Browser) -> None:
    with StreamlitServer(APPS / "render_app.py") as server, server_log_on_failure(server):
        page = open_tab(browser, server)
        try:
            json_view = page.get_by_test_id("stJson")
            expect(json_view).to_have_count(2)  # st.json + st.write(list)
            keys = json_view.first.locator(".object-key")
            for key in ("rows", "tags", "a", "b"):
                expect(keys.filter(has_text=re.compile(rf'^"{key}"$')).first).to_be_visible()
            expect(json_view.first).to_contain_text('"red"')
            expect(json_view.first).to_contain_text('"x"')
            expect(json_view.nth(1)).to_contain_text('"blue"')

            tag = page.get_by_role("radiogroup", name="Tag")
            expect(tag.get_by_role("radio")).to_have_count(2)
            expect(tag.get_by_test_id("stRadioOption")).to_have_text(["red", "blue"])
            expect(tag.get_by_role("radio", name="red")).to_be_checked()

            pick = page.get_by_role("combobox", name="Pick")
            expect(pick).to_have_value("red")

            pv = page.get_by_role("radiogroup", name="PV")
            expect(pv.get_by_test_id("stRadioOption")).to_have_text(["p", "q"])
            expect(pv.get_by_role("radio", name="p")).to_be_checked()

            # The grid is drawn on a canvas; its accessible twin, a table inside
            # the canvas, carries the same rows (hidden, so located by CSS).
            grid = page.get_by_test_id("stDataFrame").locator('table[role="grid"]')
            expect(grid).to_have_attribute("aria-rowcount", "3")  # header + 2 rows
            body_rows = grid.locator('tbody tr[role="row"]')
            expect(body_rows).to_have_count(2)
            expect(grid.locator('th[role="columnheader"]')).to_have_text(["a", "b"])
            expect(body_rows.nth(0).locator('td[role="gridcell"]')).to_have_text(["1", "x"])
            expect(body_rows.nth(1).locator('td[role="gridcell"]')).to_have_text(["2", "y"])
            expect(page.get_by_test_id("stDataFrame").get_by_test_id("data-grid-canvas")).to_be_visible()

            wait_for_app_idle(page, TIMEOUT_MS)
            assert_no_exception(page)
            assert "Traceback" not in server.log_text()
        finally:
            close_tabs(page)


# -- 4. a shared text box and a login gate ---------------------------------------------


@pytest.mark.releases
def test_shared_text_box_follows_in_the_other_tab(browser: Browser) -> None:
    """A keyed st.text_input mirrored through st.session_state as docs/reruns.md
    shows (tests/apps/mirror_app.py): what one tab commits appears in the
    other tab's box. The box that passes value= instead never gives the script
    the new value (its box, in Chromium, sometimes shows it all the same)."""
    with StreamlitServer(APPS / "mirror_app.py") as server, server_log_on_failure(server):
        a = open_tab(browser, server)
        b = open_tab(browser, server)
        try:
            field = a.get_by_label("Title", exact=True)
            field.fill("hello")
            field.press("Enter")
            expect(b.get_by_label("Title", exact=True)).to_have_value("hello")
            expect(b.get_by_test_id("stMarkdownContainer").filter(has_text="title=hello")).to_have_count(1)
            wait_for_app_idle(a, TIMEOUT_MS)
            wait_for_app_idle(b, TIMEOUT_MS)
            expect(a.get_by_label("Title", exact=True)).to_have_value("hello")
            for page in (a, b):
                by_value = page.get_by_test_id("stMarkdownContainer").filter(
                    has_text=re.compile(r"^\s*by_value=")
                )
                expect(by_value).to_have_text(
                    "by_value=" if STREAMLIT_RELEASE >= (1, 50) else "by_value=hello"
                )
            assert_no_exception(a, b)
        finally:
            close_tabs(a, b)


def test_login_gate_page_settles_in_both_tabs(browser: Browser) -> None:
    """tests/apps/gate_app.py ends every run in st.stop(): one click, one run
    per tab, and then both tabs stay idle."""
    with StreamlitServer(APPS / "gate_app.py") as server, server_log_on_failure(server):
        a = open_tab(browser, server)
        b = open_tab(browser, server)
        try:

            def runs(page: Page) -> Locator:
                return page.get_by_test_id("stMarkdownContainer").filter(
                    has_text=re.compile(r"^\s*runs=\d+\s*$")
                )

            expect(runs(a)).to_have_text("runs=1")
            expect(runs(b)).to_have_text("runs=1")
            button(a, "Post").click()
            expect(b.get_by_test_id("stMarkdownContainer").filter(has_text="posts=1")).to_have_count(1)
            wait_for_app_idle(a, TIMEOUT_MS)
            wait_for_app_idle(b, TIMEOUT_MS)
            a.wait_for_timeout(1500)  # long enough for a loop to show: it reran 12-22 times a second
            expect(runs(a)).to_have_text("runs=2")
            expect(runs(b)).to_have_text("runs=2")
            assert "stopped rerunning" not in server.log_text()
        finally:
            close_tabs(a, b)


# -- who is here ------------------------------------------------------------------


def test_two_tabs_in_a_room_see_each_other_and_one_closing_leaves(browser: Browser) -> None:
    """tests/apps/presence_app.py: each tab is in the lobby under the name in
    its URL; closing one removes it from the other's list with no
    interaction there."""
    with StreamlitServer(APPS / "presence_app.py") as server, server_log_on_failure(server):

        def open_named(name: str) -> Page:
            context = browser.new_context()
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            page.goto(f"{server.url}/?name={name}")
            wait_for_app_idle(page, 60_000)
            return page

        def line(page: Page) -> Locator:
            return page.get_by_text(re.compile(r"^here: "))

        a = open_named("Ada")
        b = open_named("Bob")
        try:
            expect(line(a)).to_have_text("here: Ada (me), Bob")
            expect(line(b)).to_have_text("here: Ada, Bob (me)")
            close_tabs(b)
            expect(line(a)).to_have_text("here: Ada (me)", timeout=5_000)  # the stated time
            assert_no_exception(a)
        finally:
            close_tabs(a)
