"""Shared fixtures: a fresh state per test, never the process-wide one; real
redis-server processes for the Redis backend (see ``redis_support.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from server_state import ServerState, ServerStateLock, _check_key

if TYPE_CHECKING:
    from playwright.sync_api import Browser
    from redis_support import RedisServer


def pytest_report_header() -> str:
    from server_state._pcompat import C_PVECTOR

    vector = "C extension (pvectorc)" if C_PVECTOR is not None else "pure-Python PVector"
    return f"pyrsistent vectors: {vector}"


@pytest.fixture
def fresh_state() -> ServerState:
    """A new, empty ``ServerState`` (outside Streamlit: no sessions)."""
    return ServerState()


@pytest.fixture
def fresh_lock(fresh_state: ServerState) -> ServerStateLock:
    """``server_state_lock`` of ``fresh_state``."""
    return ServerStateLock(fresh_state._locks, _check_key, fresh_state.keys, fresh_state._has)


# -- Redis ---------------------------------------------------------------------
# Imported in the fixtures, so the rest of the suite does not depend on redis-py.


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole session (127.0.0.1, a free port), stopped at the end.

    Shared: a test must not stop, restart, freeze or cut it -- use
    ``fresh_redis`` for that. Tests get it through ``redis_url``, which empties it.
    Without redis-server: a failure when ``CI`` is set, a skip otherwise.
    """
    from redis_support import RedisServer, require_redis_server

    require_redis_server()
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """``redis://127.0.0.1:PORT/0`` of the session server, emptied (``FLUSHALL``) for this test.

    A test that left the shared server stopped or frozen fails in its teardown
    (and the server is brought back for the next tests).
    """
    redis_server.flushall()
    yield redis_server.url
    if redis_server.is_frozen:
        redis_server.thaw()
        pytest.fail("this test left the shared redis_server frozen; use fresh_redis", pytrace=False)
    if not redis_server.running:
        redis_server.start()
        pytest.fail("this test stopped the shared redis_server; use fresh_redis", pytrace=False)


@pytest.fixture
def fresh_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, to restart, freeze, stop or cut; gone after it."""
    from redis_support import RedisServer, require_redis_server

    require_redis_server()
    with RedisServer() as server:
        yield server


# -- Chromium (the browser tests) --------------------------------------------------
# Generous: CI has 2 cores, and a pushed rerun is a round trip through the
# server and a script run. These bound a failure, not a passing test.
BROWSER_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, for the module's tests."""
    from harness.browser import sync_chromium

    with sync_chromium(timeout_ms=60_000) as b:
        yield b


@pytest.fixture(scope="module")
def expect_timeout() -> Iterator[None]:
    """Every Playwright ``expect`` in the module waits up to
    BROWSER_TIMEOUT_MS (default 5 s): ``pytest.mark.usefixtures("expect_timeout")``."""
    from playwright.sync_api import expect

    previous = getattr(expect, "_timeout", None) or 5_000
    expect.set_options(timeout=BROWSER_TIMEOUT_MS)
    yield
    expect.set_options(timeout=previous)
