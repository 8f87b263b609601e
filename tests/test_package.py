"""The package's public face: importing does no work, sessions are held weakly."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import weakref

import pytest

import server_state as package
from server_state import _streamlit as adapter
from server_state._state import ServerState


def test_import_does_no_work_and_prints_nothing() -> None:
    code = (
        "import server_state\n"
        "from streamlit.runtime import Runtime\n"
        "from streamlit.runtime.scriptrunner.script_runner import ScriptRunner\n"
        "assert not Runtime.exists()\n"
        "assert not getattr(ScriptRunner, '_server_state_hooked', False), 'hooked at import'\n"
        "print(sorted(server_state.__all__) == sorted(set(server_state.__all__)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "True\n"
    assert done.stderr == ""


def test_public_names_are_exported() -> None:
    for name in ("server_state", "server_state_lock", "no_rerun", "force_rerun_bound_sessions"):
        assert name in package.__all__
        assert getattr(package, name) is not None


class _FakeSession:
    """Stands in for an AppSession object only to prove we keep no strong
    reference to it (the cross-session behaviour is tested on real servers)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._event_loop = loop


def test_a_tracked_session_is_not_kept_alive_and_is_forgotten_when_collected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = ServerState()
    loop = asyncio.new_event_loop()  # never run: callbacks queued on it are dropped
    session = _FakeSession(loop)
    alive = weakref.ref(session)
    monkeypatch.setattr(adapter, "active_session", lambda sid: alive() if sid == "sid-1" else None)
    coordinator = state._coord
    coordinator.run_started("sid-1", None)
    assert state._tracker.entry("sid-1") is not None
    coordinator.run_finished(True)

    del session
    gc.collect()
    assert alive() is None  # nothing of ours held it
    # The finalizer only queued the id; the next announcement drops it.
    state["k"] = 1
    assert state._tracker.entry("sid-1") is None
    loop.close()


def test_an_unsupported_state_url_fails_at_import_with_a_clear_error() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import server_state"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SERVER_STATE_URL": "mongodb://127.0.0.1:1/0"},
    )
    assert done.returncode != 0
    assert "SERVER_STATE_URL=mongodb://127.0.0.1:1/0" in done.stderr
    assert "memory://" in done.stderr and "redis://" in done.stderr
