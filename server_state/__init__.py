"""server_state: one state shared by every session of a Streamlit app.

    from server_state import server_state, server_state_lock

Importing does no work: nothing looks for a Streamlit server until the state
is first used inside a running app.
"""

from __future__ import annotations

import os

from ._base import MISSING
from ._errors import (
    ReadOnlyValueError,
    RerunSuppressedError,
    ServerStateConnectionError,
    ServerStateDeadlockError,
    ServerStateError,
    ServerStateKeyError,
    ServerStateLeaseError,
    ServerStatePayloadError,
    ServerStateTypeError,
    ServerStateValidationError,
)
from ._locks import ServerStateLock
from ._presence import Member
from ._state import Commit, NoRerun, ServerState, Snapshot, _check_key
from ._store import store_from_url
from ._typed import Key
from ._values import FrozenCounter, FrozenDefaultDict, FrozenDeque, FrozenDict, FrozenList, thaw

__all__ = [
    "MISSING",
    "Commit",
    "FrozenCounter",
    "FrozenDefaultDict",
    "FrozenDeque",
    "FrozenDict",
    "FrozenList",
    "Key",
    "Member",
    "NoRerun",
    "ReadOnlyValueError",
    "RerunSuppressedError",
    "ServerState",
    "ServerStateConnectionError",
    "ServerStateDeadlockError",
    "ServerStateError",
    "ServerStateLeaseError",
    "ServerStatePayloadError",
    "ServerStateKeyError",
    "ServerStateLock",
    "ServerStateTypeError",
    "ServerStateValidationError",
    "Snapshot",
    "force_rerun_bound_sessions",
    "no_rerun",
    "server_state",
    "server_state_lock",
    "thaw",
]

__version__ = "0.1.0"


def _store_from_env() -> object:
    """The backend the environment names (checked now, connected on first use)."""
    env = os.environ
    options: dict[str, object] = {}
    for name, option in (
        ("SERVER_STATE_NAMESPACE", "namespace"),
        ("SERVER_STATE_SERIALIZER", "serializer"),
        ("SERVER_STATE_SIGNING_KEY", "signing_key"),
        ("SERVER_STATE_LEASE_TTL", "lease_ttl"),
    ):
        if env.get(name):
            options[option] = env[name]
    if "lease_ttl" in options:
        try:
            options["lease_ttl"] = float(options["lease_ttl"])  # type: ignore[arg-type]
        except ValueError:
            raise ServerStateError(
                f"SERVER_STATE_LEASE_TTL={env['SERVER_STATE_LEASE_TTL']!r} is not a number of seconds."
            ) from None
    url = env.get("SERVER_STATE_URL")
    if env.get("SERVER_STATE_REPLICA"):
        options["replica"] = env["SERVER_STATE_REPLICA"]
    if not url or url.startswith("memory://"):
        options = {}  # the Redis settings of a deployment do not stop a local run in memory
    store = store_from_url(url, **options)
    history = store.history
    limit, age = history.limit, history.max_age
    try:
        if env.get("SERVER_STATE_HISTORY"):
            limit = int(env["SERVER_STATE_HISTORY"])
        if env.get("SERVER_STATE_HISTORY_AGE"):
            age = float(env["SERVER_STATE_HISTORY_AGE"])
        history.configure(limit, age)
    except ValueError as exc:
        raise ServerStateError(
            f"SERVER_STATE_HISTORY={env.get('SERVER_STATE_HISTORY')!r} / SERVER_STATE_HISTORY_AGE="
            f"{env.get('SERVER_STATE_HISTORY_AGE')!r}: a count of commits (0 keeps none) and a number of "
            f"seconds ({exc})."
        ) from None
    return store


server_state = ServerState(_store_from_env())  # type: ignore[arg-type]
server_state_lock = ServerStateLock(server_state._locks, _check_key, server_state.keys, server_state._has)
no_rerun = NoRerun()


def force_rerun_bound_sessions(key: str) -> None:
    """Rerun every session that shows ``key``, for an in-place change the
    state cannot see (an object stored by reference and mutated)."""
    server_state.force_rerun(key)
