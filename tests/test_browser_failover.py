"""What a person sees in Chromium when the server behind a tab goes away:
nginx (round-robin, websocket upgrade) in front of two replicas of the
counter on one redis-server, and one server restarted on its port.

Streamlit's frontend reconnects by itself; from 1.38 on it then sends the new
server nothing. Without server_state's help the tab would keep showing the old
count until a click (tests/test_failover.py has the exact run counts).
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from harness import StreamlitServer, start_all
from harness.browser import wait_for_app_idle
from nginx_support import Nginx, require_nginx
from playwright.sync_api import Browser, Locator, WebSocket, expect

if TYPE_CHECKING:
    from redis_support import RedisServer

pytestmark = [pytest.mark.server, pytest.mark.browser, pytest.mark.usefixtures("expect_timeout")]

APP = Path(__file__).resolve().parent / "apps" / "failover_app.py"
TIMEOUT_MS = 30_000  # bounds a failure; the figures are printed


class Tab:
    """One browser context on ``url``, noting when each websocket opens."""

    def __init__(self, browser: Browser, url: str) -> None:
        self.sockets: list[float] = []
        context = browser.new_context()
        context.set_default_timeout(TIMEOUT_MS)
        self.page = context.new_page()
        self.page.on("websocket", self._opened)
        self.page.goto(url)
        wait_for_app_idle(self.page, 60_000)

    def _opened(self, ws: WebSocket) -> None:
        if "/_stcore/stream" in ws.url:
            self.sockets.append(time.monotonic())

    def count(self) -> Locator:
        return self.page.get_by_test_id("stMarkdownContainer").filter(has_text="Count =").locator("code")

    def replica(self) -> Locator:
        return self.page.get_by_test_id("stMarkdownContainer").filter(has_text="replica=")

    def shows(self, count: int, replica: str | None = None) -> None:
        expect(self.count()).to_have_text(str(count))
        if replica is not None:
            expect(self.replica()).to_have_text(re.compile(rf"^replica={replica} "))

    def click(self) -> None:
        self.page.get_by_test_id("stButton").get_by_role("button", name="Increment", exact=True).click()

    def close(self) -> None:
        self.page.context.close()


def env(url: str, replica: str, namespace: str) -> dict[str, str]:
    return {"SERVER_STATE_URL": url, "SERVER_STATE_NAMESPACE": namespace, "FAILOVER_REPLICA": replica}


def test_a_tab_whose_replica_stops_follows_the_count_again_by_itself(
    browser: Browser, redis_server: RedisServer
) -> None:
    """Tab A goes through nginx, tab B straight to the replica A is not on.
    A's replica stops (SIGTERM, as a rolling deploy does) and B counts on:
    A's frontend reconnects through nginx to the survivor and shows the
    current count with no action in A; then clicks in either show in the
    other, and the count is the number of clicks."""
    require_nginx()
    namespace = f"browser-failover-{uuid.uuid4().hex[:8]}"
    replicas = {
        name: StreamlitServer(APP, env=env(redis_server.url, name, namespace)) for name in ("r1", "r2")
    }
    start_all(list(replicas.values()))
    a: Tab | None = None
    b: Tab | None = None
    try:
        with Nginx([s.port for s in replicas.values()]) as lb:
            a = Tab(browser, lb.url)
            a.shows(0)
            on = re.match(r"replica=(\w+)", a.replica().inner_text())
            assert on is not None
            doomed_name = on.group(1)
            (survivor_name,) = set(replicas) - {doomed_name}
            b = Tab(browser, replicas[survivor_name].url)
            b.shows(0)

            a.click()
            b.shows(1)
            b.click()
            a.shows(2)

            stopped = time.monotonic()
            replicas[doomed_name].stop()
            b.click()
            b.shows(3)
            a.shows(3, survivor_name)
            shown = time.monotonic()
            assert len(a.sockets) >= 2, "A's frontend did not reconnect"
            print(
                f"\nA back: websocket {a.sockets[-1] - stopped:.2f} s after its replica was told to stop, "
                f"the current count {shown - a.sockets[-1]:.2f} s after that"
            )

            wait_for_app_idle(a.page, TIMEOUT_MS)
            b.click()
            a.shows(4)
            wait_for_app_idle(b.page, TIMEOUT_MS)
            a.click()
            b.shows(5)
            a.shows(5)
            expect(a.page.get_by_test_id("stException")).to_have_count(0)
    finally:
        for tab in (a, b):
            if tab is not None:
                tab.close()
        for server in replicas.values():
            server.stop()


@pytest.mark.releases
def test_a_tab_of_a_restarted_server_shows_what_the_new_process_has(browser: Browser) -> None:
    """One server in memory, restarted on its port with a tab open: the tab
    reconnects and, by itself, shows the new process's count (0: the state
    went with the old process), then follows a new tab's click."""
    first = StreamlitServer(APP, env={"FAILOVER_REPLICA": "first"}).start()
    port = first.port
    tab: Tab | None = None
    other: Tab | None = None
    try:
        tab = Tab(browser, first.url)
        tab.click()
        tab.shows(1, "first")
        first.stop()
        with StreamlitServer(APP, env={"FAILOVER_REPLICA": "second"}, port=port) as second:
            tab.shows(0, "second")
            wait_for_app_idle(tab.page, TIMEOUT_MS)
            other = Tab(browser, second.url)
            other.click()
            tab.shows(1)
            expect(tab.page.get_by_test_id("stException")).to_have_count(0)
    finally:
        for t in (tab, other):
            if t is not None:
                t.close()
        first.stop()
