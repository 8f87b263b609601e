"""Backends: where the state lives. Each is a committer
(``server_state.backends._seam.Committer``) under the one store engine.

- ``memory://`` (the default): ``memory.MemoryCommitter``, one process.
- ``redis://``, ``rediss://``, ``unix://``: ``redis.RedisCommitter``,
  several replicas sharing one Redis; each replica reads a local mirror.
- ``sqlite:///path.db``: ``sqlite.SqliteCommitter``, durable in one file,
  shared by the processes of one host; each reads a local mirror.

Nothing connects at import: ``committer_from_url`` checks the URL and builds
the committer; a shared committer connects (opens its file) on first use.
Only ``backends/redis/`` imports ``redis``, only ``backends/sqlite/``
``sqlite3``.
"""

from __future__ import annotations

from typing import Any

from .._errors import ServerStateError
from ._seam import DEFAULT_NAMESPACE, Committer, redact
from .memory import MemoryCommitter

__all__ = ["DEFAULT_NAMESPACE", "Committer", "MemoryCommitter", "committer_from_url"]

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def committer_from_url(url: str | None, **options: Any) -> Committer:
    """The committer a ``SERVER_STATE_URL`` names (checked now, connected later)."""
    if not url or url.startswith("memory://"):
        if options:
            raise ServerStateError(
                f"server_state: {', '.join(sorted(options))} only apply to a shared backend (a Redis "
                f"URL; a SQLite URL but for namespace); the state is in memory ({url or 'memory://'})."
            )
        return MemoryCommitter()
    if url.startswith("sqlite:"):
        if options.get("namespace"):
            raise ServerStateError(
                f"server_state: namespace={options['namespace']!r} applies to Redis; with SQLite, "
                f"each state is a file of its own ({url}): unset SERVER_STATE_NAMESPACE."
            )
        options.pop("namespace", None)
        from .sqlite import SqliteCommitter

        return SqliteCommitter(url, **options)
    if url.startswith(_REDIS_SCHEMES):
        try:
            from .redis import RedisCommitter
        except ImportError as exc:  # the redis extra is not installed
            raise ServerStateError(
                f"SERVER_STATE_URL={redact(url)} needs the redis extra: pip install 'server-state[redis]' "
                f"({exc})."
            ) from None
        return RedisCommitter(url, **options)
    raise ServerStateError(
        f"SERVER_STATE_URL={redact(url)}: unknown scheme; use memory:// (the default, one server), "
        "sqlite:///path/to/state.db (durable, the processes of one host), or redis://host:6379/0, "
        "rediss://... or unix:///path/to/redis.sock for several replicas."
    )
