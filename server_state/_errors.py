"""One error tree. Each error also inherits the builtin it stands for, so
``except KeyError`` keeps working, carries the key, and says what to do."""

from __future__ import annotations

__all__ = [
    "ServerStateError",
    "ServerStateKeyError",
    "ServerStateTypeError",
    "ReadOnlyValueError",
    "RerunSuppressedError",
]


class ServerStateError(Exception):
    """Base class of every error this package raises on purpose."""

    key: str | None = None


class ServerStateKeyError(ServerStateError, KeyError):
    """A key that is not in the state was read, deleted or updated without default."""

    def __init__(self, key: str, message: str) -> None:
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
