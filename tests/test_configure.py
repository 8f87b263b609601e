"""Choosing the backend: ``SERVER_STATE_URL`` and friends, or
``server_state.configure(...)`` before first use. Against a real redis-server."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from server_state import (
    ServerState,
    ServerStateConnectionError,
    ServerStateError,
    ServerStateLock,
    _check_key,
)
from server_state.backends import MemoryCommitter


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def test_configure_before_first_use_puts_the_state_in_redis(redis_url: str, redis_server: object) -> None:
    state = ServerState()
    state.configure(redis_url, namespace="team-a")
    try:
        state["greeting"] = "hello"
        raw = redis_server.client()  # type: ignore[attr-defined]
        assert raw.hexists("{ss:team-a}:data", "greeting")
        assert not raw.exists("{ss:server_state}:data")  # the default namespace is untouched
        store = state._store
        state.configure(redis_url, namespace="team-a")  # the same again: nothing happens
        assert state._store is store
        with pytest.raises(ServerStateError, match="before the state is first used"):
            state.configure(redis_url, namespace="team-b")
        assert state._store is store and state["greeting"] == "hello"
    finally:
        state._store.close()


def test_configure_refuses_settings_a_backend_does_not_take_and_unknown_schemes() -> None:
    state = ServerState()
    with pytest.raises(ServerStateError, match="namespace only apply to a shared backend"):
        state.configure("memory://", namespace="x")
    with pytest.raises(ServerStateError, match="namespace='x' applies to Redis; with SQLite"):
        state.configure("sqlite:///state.db", namespace="x")
    with pytest.raises(ServerStateError, match="a SQLite URL names a file"):
        state.configure("sqlite://", lease_ttl=5)
    with pytest.raises(ServerStateError, match="synchronous='fast'"):
        state.configure("sqlite:///state.db?synchronous=fast")
    with pytest.raises(ServerStateError, match="unknown scheme"):
        state.configure("mongodb://127.0.0.1/0")
    with pytest.raises(ServerStateError, match="signing key"):
        state.configure("redis://127.0.0.1:1/0", serializer="pickle")
    assert type(state._store.committer) is MemoryCommitter
    state["k"] = 1  # still usable


def test_configure_after_a_lock_was_taken_is_refused() -> None:
    state = ServerState()
    with ServerStateLock(state._locks, _check_key)["count"]:
        pass
    with pytest.raises(ServerStateError, match="before the state is first used"):
        state.configure("redis://127.0.0.1:1/0")


def test_the_environment_selects_redis_and_the_namespace(redis_url: str, redis_server: object) -> None:
    done = _run(
        """
        from server_state import server_state
        server_state["k"] = {"n": 1}
        print(type(server_state._store.committer).__name__)
        server_state._store.close()
        """,
        SERVER_STATE_URL=redis_url,
        SERVER_STATE_NAMESPACE="from-env",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "RedisCommitter"
    assert redis_server.client().hexists("{ss:from-env}:data", "k")  # type: ignore[attr-defined]


def test_import_does_not_connect_and_first_use_without_redis_says_where() -> None:
    done = _run(
        """
        import server_state
        from server_state import server_state as state, ServerStateConnectionError
        print("imported")
        try:
            state["k"] = 1
        except ServerStateConnectionError as exc:
            assert isinstance(exc, ConnectionError)
            print("refused:", exc)
        """,
        SERVER_STATE_URL="redis://user:secret@127.0.0.1:1/0",
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("imported")
    assert "refused:" in out and "127.0.0.1:1" in out
    assert "secret" not in out  # the password is never printed


def test_redis_settings_in_the_environment_do_not_stop_a_run_in_memory() -> None:
    done = _run(
        "from server_state import server_state; server_state['k'] = 1; print(type(server_state._store.committer).__name__)",
        SERVER_STATE_NAMESPACE="prod",
        SERVER_STATE_URL="",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "MemoryCommitter"


def test_a_lease_ttl_that_is_not_a_number_fails_at_import() -> None:
    done = _run("import server_state", SERVER_STATE_URL="redis://127.0.0.1:1/0", SERVER_STATE_LEASE_TTL="ten")
    assert done.returncode != 0
    assert "SERVER_STATE_LEASE_TTL='ten' is not a number of seconds" in done.stderr


def test_the_lock_of_a_redis_state_is_a_reentrant_lease(redis_url: str, redis_server: object) -> None:
    state = ServerState()
    state.configure(redis_url, namespace="locks")
    lock = ServerStateLock(state._locks, _check_key)
    raw = redis_server.client()  # type: ignore[attr-defined]
    try:
        with lock["count"]:
            assert raw.exists("{ss:locks}:lease:count")
            with lock.count:  # re-entrant in-process
                state.count = state.get("count", 0) + 1
            assert raw.exists("{ss:locks}:lease:count")
        assert not raw.exists("{ss:locks}:lease:count")
        assert state.count == 1
    finally:
        state._store.close()


def test_first_use_with_redis_down_raises_a_connection_error() -> None:
    state = ServerState()
    state.configure("redis://127.0.0.1:1/0", namespace="down")
    with pytest.raises(ServerStateConnectionError, match=r"127\.0\.0\.1:1"):
        state.peek("k")
    with pytest.raises(ConnectionError):
        state["k"] = 1


def test_a_redis_that_can_evict_is_warned_about_at_connect(fresh_redis: object) -> None:
    fresh_redis.client().config_set("maxmemory-policy", "allkeys-lru")  # type: ignore[attr-defined]
    state = ServerState()
    state.configure(fresh_redis.url, namespace="evict")  # type: ignore[attr-defined]
    try:
        with pytest.warns(RuntimeWarning, match="maxmemory-policy=allkeys-lru"):
            state["k"] = 1
    finally:
        state._store.close()


def test_a_lock_held_longer_than_its_lease_is_renewed_and_its_writes_land(redis_url: str) -> None:
    state = ServerState()
    state.configure(redis_url, namespace="renew", lease_ttl=0.3)
    lock = ServerStateLock(state._locks, _check_key)
    try:
        with lock["n"]:
            # Held for four lease lifetimes (a duration, not a wait for
            # anything): without renewal the write would be refused.
            time.sleep(1.2)
            state["n"] = 1
        assert state.peek("n") == 1
    finally:
        state._store.close()
