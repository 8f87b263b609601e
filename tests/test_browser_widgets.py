"""server_state.widget in Chromium: two tabs, each its own browser context
(its own session), editing a bound text box and cells of a shared
st.data_editor; every check is on the rendered page."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import StreamlitServer
from harness.browser import wait_for_app_idle
from playwright.sync_api import Browser, Locator, Page, expect

pytestmark = [pytest.mark.server, pytest.mark.browser, pytest.mark.usefixtures("expect_timeout")]

APP = Path(__file__).resolve().parent / "apps" / "bound_browser_app.py"
TIMEOUT_MS = 30_000
# st.data_editor draws on a canvas: a cell is reached by its position. Rows
# and the header are 35 px high; two columns, no index column.
ROW_PX, COLUMNS = 35, 2


def open_tab(browser: Browser, server: StreamlitServer) -> Page:
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(server.url)
    wait_for_app_idle(page, 60_000)
    return page


def text(page: Page, start: str) -> Locator:
    return page.get_by_test_id("stMarkdownContainer").filter(has_text=start)


def edit_cell(page: Page, row: int, column: int, value: str) -> None:
    """Select the cell, open its editor (Enter), fill it, commit (Enter)."""
    wait_for_app_idle(page, TIMEOUT_MS)  # a grid redrawn by a run under way would lose the edit
    grid = page.get_by_test_id("stDataFrame")
    box = grid.bounding_box()
    assert box is not None
    width = box["width"] / COLUMNS  # the columns share the grid's width
    grid.click(position={"x": width * (column + 0.5), "y": ROW_PX * (row + 1.5)})
    page.keyboard.press("Enter")
    editor = page.locator("textarea.gdg-input")  # the grid's overlay cell editor
    editor.fill(value)
    editor.press("Enter")


def test_two_tabs_edit_a_bound_box_and_different_cells_of_a_shared_table(browser: Browser) -> None:
    with StreamlitServer(APP) as server:
        a = open_tab(browser, server)
        b = open_tab(browser, server)
        try:
            field = a.get_by_label("Title", exact=True)
            field.fill("hello")
            field.press("Enter")
            expect(b.get_by_label("Title", exact=True)).to_have_value("hello")
            expect(text(b, "title=")).to_have_text("title=hello")

            edit_cell(a, 0, 0, "oat milk")
            expect(text(b, "todo=")).to_have_text("todo=oat milk/ann; eggs/bob; bread/cy")
            edit_cell(b, 2, 1, "dee")  # B's editor is the fresh one showing A's edit
            both = "todo=oat milk/ann; eggs/bob; bread/dee"
            expect(text(a, "todo=")).to_have_text(both)
            expect(text(b, "todo=")).to_have_text(both)
            for page in (a, b):
                wait_for_app_idle(page, TIMEOUT_MS)
                expect(page.get_by_test_id("stException")).to_have_count(0)
            expect(a.get_by_label("Title", exact=True)).to_have_value("hello")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- server log tail ---\n{server.log_tail()}") from exc
        finally:
            for page in (a, b):
                page.context.close()
