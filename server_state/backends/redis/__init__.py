"""The Redis backend: several replicas, one state (see ``_committer``)."""

from __future__ import annotations

from ._committer import RedisCommitter, RedisNames
from ._leases import LeasedLock

__all__ = ["LeasedLock", "RedisCommitter", "RedisNames"]
