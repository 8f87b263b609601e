"""Keys: always plain ``str``.

A ``str`` subclass key (``class K(str, Enum)``, a very common way to name
keys) means its string value everywhere: item and attribute access, ``in``,
locks, snapshots, ``update`` and ``transact``. Such an enum's ``str()`` is
``"K.COUNT"`` and its hash is not its value's, so it is converted with
``str.__str__``, which gives the characters themselves as an exact ``str``.
"""

from __future__ import annotations

from ._errors import ServerStateTypeError

__all__ = ["HIDDEN", "check_key", "hidden", "normalise_key"]

HIDDEN = "\x00"
"""The first character of the library's own keys (expiry deadlines, presence
rooms): kept in the state like any key, so every backend stores, shares and
restores them, but never listed by ``keys()``, ``len()`` or iteration, and
refused as a new key from an app."""


def hidden(key: str) -> bool:
    """Whether ``key`` is one of the library's own (see ``HIDDEN``)."""
    return key[:1] == HIDDEN


def normalise_key(key: str) -> str:
    """``key`` as an exact ``str`` (``key`` must be a ``str`` or subclass)."""
    return key if type(key) is str else str.__str__(key)


def check_key(key: object) -> str:
    """The exact ``str`` of a key, or a ``TypeError`` saying what to do."""
    if type(key) is str:
        return key
    if isinstance(key, str):
        return str.__str__(key)
    raise ServerStateTypeError(
        None,
        f"server_state keys must be str, got {key!r} ({type(key).__name__}); "
        f"use server_state[str(key)] if you meant its text.",
    )
