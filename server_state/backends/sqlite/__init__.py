"""The SQLite backend: ``sqlite:///path.db``, a state that survives restarts
without a server, shared by the processes of one host (see ``_committer``)."""

from ._committer import SqliteCommitter
from ._leases import LeasedLock

__all__ = ["LeasedLock", "SqliteCommitter"]
