"""Backends: where the state lives.

- ``memory://`` (the default): :class:`server_state._store.MemoryStore`, one
  process.
- ``redis://``, ``rediss://``, ``unix://``: :mod:`server_state.backends.redis`,
  several replicas sharing one Redis; each replica reads a local mirror.

The seam. The facade, the binding tracker and the rerun scheduler talk to a
store through the methods of ``MemoryStore`` that do not start with an
underscore (``entry``, ``version``, ``keys``, ``ordered_keys``, ``state``,
``set``, ``touch``, ``delete``, ``update``, ``transact``, ``watch``,
``notify``) plus ``attach``: the facade gives the store the function that
announces commits made elsewhere (another replica) and the function that tells
what a commit made here carries to the other replicas (its ``Origin``). The
retry loops and freezing live in ``MemoryStore``; a backend overrides only the
two commit primitives, so every backend keeps the same rules.

Nothing connects at import: ``store_from_url`` checks the URL and builds the
store; the Redis store connects on first use. Only ``backends/redis.py``
imports ``redis``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .._errors import ServerStateError

__all__ = ["DEFAULT_NAMESPACE", "Origin", "store_from_url"]

DEFAULT_NAMESPACE = "server_state"

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class Origin(NamedTuple):
    """What a commit carries to the rerun scheduler of every replica."""

    round: int = 0  # rerun round of the run that wrote (0: a user action or a thread)
    chain: frozenset[str] = frozenset()  # keys of the rerun chain that led to the write
    no_rerun: bool = False  # written inside ``with no_rerun:``


LOCAL = Origin()


def store_from_url(url: str | None, **options: Any) -> Any:
    """The store a ``SERVER_STATE_URL`` names (checked now, connected later)."""
    from .._store import MemoryStore

    if not url or url.startswith("memory://"):
        if options:
            raise ServerStateError(
                f"server_state: {', '.join(sorted(options))} only apply to a Redis URL "
                f"(redis://, rediss://, unix://); the state is in memory ({url or 'memory://'})."
            )
        return MemoryStore()
    if url.startswith(_REDIS_SCHEMES):
        try:
            from .redis import RedisStore
        except ImportError as exc:  # the redis extra is not installed
            raise ServerStateError(
                f"SERVER_STATE_URL={_redact(url)} needs the redis extra: pip install 'server-state[redis]' "
                f"({exc})."
            ) from None
        return RedisStore(url, **options)
    raise ServerStateError(
        f"SERVER_STATE_URL={_redact(url)}: unknown scheme; use memory:// (the default, one server), "
        "or redis://host:6379/0, rediss://... or unix:///path/to/redis.sock for several replicas."
    )


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user + ':' if user else ''}***@{host}"
    return url
