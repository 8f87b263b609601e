"""Shared fixtures: a fresh state per test, never the process-wide one."""

from __future__ import annotations

import pytest

from server_state import ServerState, ServerStateLock, _check_key


@pytest.fixture
def fresh_state() -> ServerState:
    """A new, empty ``ServerState`` (outside Streamlit: no sessions)."""
    return ServerState()


@pytest.fixture
def fresh_lock(fresh_state: ServerState) -> ServerStateLock:
    """``server_state_lock`` of ``fresh_state``."""
    return ServerStateLock(fresh_state._locks, _check_key)
