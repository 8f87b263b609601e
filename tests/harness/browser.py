"""Launch Debian's Chromium through Playwright, for the few frontend-only tests.

Why not ``playwright install``: this machine (and CI) cannot download browser
builds, so Playwright must drive the system ``chromium`` package via
``executable_path``. The extra flags keep Chromium from phoning home
(component updates, sync, QUIC probes) and make it work as root in a
container (``--no-sandbox``) without a GPU.

Typical use (sync)::

    with sync_chromium() as browser:
        page = browser.new_page()
        page.goto(server.url)

or async::

    async with async_chromium() as browser:
        page = await browser.new_page()
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.async_api import Browser as AsyncBrowser
    from playwright.async_api import Page as AsyncPage
    from playwright.sync_api import Browser as SyncBrowser
    from playwright.sync_api import Page as SyncPage

__all__ = [
    "CHROMIUM_ARGS",
    "ChromiumNotFoundError",
    "async_chromium",
    "APP_IDLE_SELECTOR",
    "async_wait_for_app_idle",
    "chromium_path",
    "sync_chromium",
    "wait_for_app_idle",
]

# The frontend marks its root with the script run state ("initial", "running",
# "notRunning", "rerunRequested", ...) and the connection state. Waiting for
# "notRunning" + "CONNECTED" avoids clicking a widget of a page that is still
# being run or whose websocket is not up yet (a click then may be lost).
APP_IDLE_SELECTOR = (
    '[data-testid="stApp"][data-test-script-state="notRunning"][data-test-connection-state="CONNECTED"]'
)

CHROMIUM_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


class ChromiumNotFoundError(RuntimeError):
    """No ``chromium`` executable on PATH."""


def chromium_path() -> str:
    """Path of the system Chromium, or a clear error saying how to get it."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise ChromiumNotFoundError(
            "chromium not found on PATH. Install Debian's package "
            "(`apt-get install -y chromium`); `playwright install` cannot "
            "download browsers on this machine."
        )
    return path


@contextmanager
def sync_chromium(
    *, headless: bool = True, extra_args: Sequence[str] = (), timeout_ms: float = 60_000
) -> Iterator[SyncBrowser]:
    """A headless Chromium ``Browser`` (sync API), closed on exit."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=executable,
            headless=headless,
            args=[*CHROMIUM_ARGS, *extra_args],
            timeout=timeout_ms,
        )
        try:
            yield browser
        finally:
            browser.close()


@asynccontextmanager
async def async_chromium(
    *, headless: bool = True, extra_args: Sequence[str] = (), timeout_ms: float = 60_000
) -> AsyncIterator[AsyncBrowser]:
    """A headless Chromium ``Browser`` (async API), closed on exit."""
    from playwright.async_api import async_playwright

    executable = chromium_path()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=executable,
            headless=headless,
            args=[*CHROMIUM_ARGS, *extra_args],
            timeout=timeout_ms,
        )
        try:
            yield browser
        finally:
            await browser.close()


# Streamlit 1.37's frontend has neither attribute (both are 1.38+). There the
# status widget ("Running...", or the connection status while disconnected) is
# the only sign: idle is the app drawn, no skeleton, no status widget. That is
# weaker (the widget leaves after a 200 ms transition, and shows nothing in
# the instant between connecting and the first run), so tests on 1.37 also
# wait for the text they expect, as they do anyway.
_IDLE_SCRIPT = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (app === null) return false;
    if (app.hasAttribute("data-test-script-state")) {
        return app.matches(SELECTOR);
    }
    return document.querySelector('[data-testid="stAppSkeleton"]') === null
        && document.querySelector('[data-testid="stStatusWidget"]') === null;
}""".replace("SELECTOR", json.dumps(APP_IDLE_SELECTOR))


def wait_for_app_idle(page: SyncPage, timeout_ms: float = 60_000) -> None:
    """Block until the app is connected and no script run is in progress."""
    page.wait_for_function(_IDLE_SCRIPT, timeout=timeout_ms)


async def async_wait_for_app_idle(page: AsyncPage, timeout_ms: float = 60_000) -> None:
    """Async twin of ``wait_for_app_idle``."""
    await page.wait_for_function(_IDLE_SCRIPT, timeout=timeout_ms)
