"""The words every layer shares: a leaf module (it imports no other module
of the package).

- ``MISSING``: "no value" (a key that is absent, before or after a change);
- ``Change``: one key's change in a commit, as the store, the history, the
  watchers and the rerun scheduler see it;
- ``StoreState``: one instant of the store, never mutated;
- ``Origin``: what a commit carries to the rerun scheduler of every replica
  (the round and chain of the run that wrote it), ``LOCAL`` for none.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from pyrsistent import PMap

__all__ = ["LOCAL", "MISSING", "Change", "Origin", "StoreState"]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISSING"  # pickles as the module global: stays the one sentinel


MISSING: Any = _Missing()


class Change(NamedTuple):
    """One key's change in a commit. ``old``/``new`` are stored forms or MISSING."""

    key: str
    old: Any
    new: Any
    version: int


class StoreState(NamedTuple):
    """One instant of the store: never mutated.

    A key's value in it is at most ``seq`` old, so a reader of a snapshot is
    bound at ``seq``: stale exactly when the key advanced after the snapshot."""

    values: PMap[str, Any]  # key -> stored value
    seq: int  # the last commit's sequence number


class Origin(NamedTuple):
    """What a commit carries to the rerun scheduler of every replica."""

    round: int = 0  # rerun round of the run that wrote (0: a user action or a thread)
    chain: frozenset[str] = frozenset()  # keys of the rerun chain that led to the write
    no_rerun: bool = False  # written inside ``with no_rerun:``
    expired: bool = False  # a key's lifetime ended (``_expiry``): the commit deletes it


LOCAL = Origin()
