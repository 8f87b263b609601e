"""One error tree. Each error also inherits the builtin it stands for, so
``except KeyError`` keeps working, carries the key, and says what to do."""

from __future__ import annotations

__all__ = [
    "ServerStateError",
    "ServerStateKeyError",
    "ServerStateTypeError",
    "ReadOnlyValueError",
    "RerunSuppressedError",
    "ServerStateDeadlockError",
    "ServerStateConnectionError",
    "ServerStateLeaseError",
    "ServerStatePayloadError",
    "ServerStateValidationError",
]


class ServerStateError(Exception):
    """Base class of every error this package raises on purpose."""

    key: str | None = None


class ServerStateKeyError(ServerStateError, KeyError):
    """A key that is not in the state was read, deleted, popped or updated
    without default (``key`` is None for ``popitem`` on an empty state)."""

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(message)
        self.key = key

    def __str__(self) -> str:  # KeyError quotes its argument; we want the sentence.
        return str(self.args[0])


class ServerStateTypeError(ServerStateError, TypeError):
    """A key or a value of the wrong kind."""

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(message)
        self.key = key


class ReadOnlyValueError(ServerStateTypeError):
    """A value read from the state was mutated in place."""


class RerunSuppressedError(ServerStateError, RuntimeError):
    """``force_rerun_bound_sessions`` was called inside ``no_rerun``."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class ServerStateDeadlockError(ServerStateError, RuntimeError):
    """``update``/``transact`` waited too long for a key's lock while this
    thread holds another key's lock: two threads are most likely each waiting
    for the other."""

    def __init__(self, keys: list[str], held: list[str], waited: float) -> None:
        wanted = ", ".join(map(repr, keys))
        mine = ", ".join(map(repr, held))
        super().__init__(
            f"server_state: waited {waited:.0f} s for the lock of {wanted} while this thread holds "
            f"the lock of {mine}; another thread holding {wanted} is probably waiting for {mine} "
            "(a deadlock). Nothing was written. Take the locks in one order everywhere, or use "
            "server_state.transact(fn) to change several keys at once without holding locks."
        )
        self.key = keys[0]
        self.keys = keys
        self.held = held


class ServerStateConnectionError(ServerStateError, ConnectionError):
    """The shared store (Redis) could not be reached for a write. Reads keep
    serving the replica's mirror; writes work again once it is back."""

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(message)
        self.key = key


class ServerStateLeaseError(ServerStateError, RuntimeError):
    """A write made while holding ``server_state_lock[key]`` on several
    replicas was refused: the lock's lease in Redis had expired (this process
    stalled for longer than the lease), so another replica may hold the lock.
    Nothing was written."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class ServerStatePayloadError(ServerStateError, ValueError):
    """A value read from the shared store was refused: a pickle payload that
    is not signed with the configured key, or data this version cannot
    decode. It is never unpickled."""

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(message)
        self.key = key


class ServerStateValidationError(ServerStateError, ValueError):
    """A write to a key declared with ``server_state.key(..., validator=...)``
    was rejected by that validator (it returned a false value or raised).
    Nothing was written."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
