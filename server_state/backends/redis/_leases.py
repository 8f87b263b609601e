"""``server_state_lock[key]`` across replicas: a lease in Redis (the lock
itself, ``LeasedLock``, is shared with SQLite: ``backends._leasing``).

- take: ``SET NX PX`` (``_scripts.LEASE_TAKE``), a random token per take,
  re-entrant in-process through the local lock it wraps; taking waits until
  the mirror has every commit made before it, so a read under the lock sees
  the last holder's writes;
- renew: a thread of the replica extends every lease it holds each third of
  the lease time (``LEASE_RENEW``);
- drop: compare-and-delete (``LEASE_DROP``): never another holder's lease;
- fencing: every commit of a thread that holds leases carries their tokens
  (``Leases.held``), and the commit script refuses it when one of them is no
  longer the lease's token: a holder whose lease expired (a stalled process)
  gets ``ServerStateLeaseError`` and writes nothing.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from ... import _locks
from ..._errors import ServerStateConnectionError, ServerStateDeadlockError
from .._leasing import LeasedLock
from . import _scripts

__all__ = ["LeasedLock", "Leases"]  # LeasedLock: the lock the facade hands out

_LOG = logging.getLogger("server_state")


class Leases:
    """The leases of one replica. ``prefix``: the lease keys' prefix;
    ``catch_up(seq)``: wait until the mirror has Redis commit ``seq``;
    ``open()``: connect on first use."""

    kind = "Redis"

    def __init__(
        self,
        client: Any,
        prefix: str,
        meta: str,
        ttl: float,
        closing: threading.Event,
        catch_up: Callable[[int], None],
        open_: Callable[[], None],
        net_errors: tuple[type[BaseException], ...],
        patience: float,
    ) -> None:
        self.client, self.prefix, self.meta, self.ttl = client, prefix, meta, ttl
        self._closing, self._catch_up, self._open = closing, catch_up, open_
        self._net_errors, self._patience = net_errors, patience
        self._take = client.register_script(_scripts.LEASE_TAKE)
        self._renew = client.register_script(_scripts.LEASE_RENEW)
        self._drop = client.register_script(_scripts.LEASE_DROP)
        self._local = threading.local()  # .leases: {lease key: token} of this thread
        self._all: dict[str, str] = {}  # every lease held here, for the renewer
        self._all_lock = threading.Lock()

    def held(self) -> dict[str, str]:
        """The leases this thread holds: ``{lease key: token}`` (its commits are fenced by them)."""
        return getattr(self._local, "leases", None) or {}

    def take(self, key: str, blocking: bool, deadline: float | None) -> str | None:
        """Take ``key``'s lease; its token, or None when not blocking (or
        past ``deadline``) and another holds it."""
        self._open()
        name = self.prefix + key
        token = uuid.uuid4().hex
        ttl = str(int(self.ttl * 1000))
        pause = 0.001
        net_deadline = time.monotonic() + self._patience
        while True:
            try:
                got, value = self._take(keys=[name, self.meta], args=[token, ttl], client=self.client)
            except self._net_errors as exc:
                if time.monotonic() > net_deadline:
                    raise ServerStateConnectionError(
                        key, f"server_state could not take the lock of {key!r} in Redis ({exc})."
                    ) from exc
                self._closing.wait(pause)
                pause = min(pause * 2, 0.5)
                continue
            if int(got) == 1:
                break
            if not blocking or (deadline is not None and time.monotonic() >= deadline):
                return None
            wait = min(pause, int(value) / 1000 if int(value) > 0 else pause)
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            self._closing.wait(wait)
            pause = min(pause * 2, 0.02)
        leases = getattr(self._local, "leases", None)
        if leases is None:
            leases = self._local.leases = {}
        leases[name] = token
        with self._all_lock:
            self._all[name] = token
        try:
            # What the last holder wrote is in Redis before its release: show it.
            self._catch_up(int(value))
        except BaseException:
            self.drop(key, token)  # never leave a lease nobody will release
            raise
        return token

    def drop(self, key: str, token: str) -> None:
        name = self.prefix + key
        getattr(self._local, "leases", {}).pop(name, None)
        with self._all_lock:
            if self._all.get(name) == token:
                del self._all[name]
        try:
            self._drop(keys=[name], args=[token], client=self.client)
        except self._net_errors as exc:
            _LOG.warning(
                "server_state: could not release the lock of %r in Redis (%s); it expires in %g s",
                key,
                exc,
                self.ttl,
            )

    def wait_free(self, name: str, held: list[str]) -> None:
        """Until another replica releases (or loses) the lock ``name``. A
        thread holding other locks meanwhile gets ``ServerStateDeadlockError``
        after ``LOCK_PATIENCE``, as it would in one process."""
        pause = 0.001
        deadline = time.monotonic() + _locks.LOCK_PATIENCE
        while not self._closing.is_set():
            try:
                if not self.client.exists(name):
                    return
            except self._net_errors:
                pass
            if held and time.monotonic() > deadline:
                cut = len(self.prefix)
                raise ServerStateDeadlockError([name[cut:]], [k[cut:] for k in held], _locks.LOCK_PATIENCE)
            self._closing.wait(pause)
            pause = min(pause * 2, 0.02)

    def renew_forever(self) -> None:
        """The renewer thread's loop, until the replica closes."""
        ttl = str(int(self.ttl * 1000))
        while not self._closing.wait(self.ttl / 3):
            with self._all_lock:
                held = list(self._all.items())
            for name, token in held:
                try:
                    if not int(self._renew(keys=[name], args=[token, ttl], client=self.client)):
                        _LOG.warning(
                            "server_state: the lock %s was lost (expired); writes under it will fail", name
                        )
                except self._net_errors as exc:
                    _LOG.warning("server_state: could not renew the lock %s (%s)", name, exc)
