"""server_state: one state shared by every session of a Streamlit app.

    from server_state import server_state, server_state_lock

Importing does no work: nothing looks for a Streamlit server until the state
is first used inside a running app.
"""

from __future__ import annotations

import os

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
)
from ._locks import ServerStateLock
from ._state import NoRerun, ServerState, Snapshot, _check_key
from ._store import MISSING, store_from_url
from ._values import FrozenCounter, FrozenDefaultDict, FrozenDeque, FrozenDict, FrozenList, thaw

__all__ = [
    "MISSING",
    "FrozenCounter",
    "FrozenDefaultDict",
    "FrozenDeque",
    "FrozenDict",
    "FrozenList",
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
    "Snapshot",
    "force_rerun_bound_sessions",
    "no_rerun",
    "server_state",
    "server_state_lock",
    "thaw",
]

__version__ = "0.1.0"

server_state = ServerState(store_from_url(os.environ.get("SERVER_STATE_URL")))
server_state_lock = ServerStateLock(server_state._locks, _check_key)
no_rerun = NoRerun()


def force_rerun_bound_sessions(key: str) -> None:
    """Rerun every session that shows ``key``, for an in-place change the
    state cannot see (an object stored by reference and mutated)."""
    server_state.force_rerun(key)
