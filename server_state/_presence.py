"""Who is here: rooms of members, across sessions and replicas.

A room is one of the library's own keys (``_keys.HIDDEN``), ``ROOM + room``,
holding a pyrsistent map ``member -> (name, since)``. A member is
``replica + "/" + session id``: the replica that serves the session (its
``SERVER_STATE_REPLICA``, or ``host:pid``; ``local`` in memory) and Streamlit's
session id. Being a key like any other, a room is shared, restored and
patched by every backend: on Redis a join or a leave in a room of 64 members
or more sends the one entry that changed.

- Joining commits only what changed: the same session joining again with the
  same name is a read (so a script that reruns on the room key does not loop).
- A session leaves when its tab closes: ``check`` (every ``CHECK_PERIOD`` on
  a daemon thread, while this process has members) asks the adapter whether
  each of its sessions is still connected, and takes those that are not out
  of every room in one commit. A room with no member is deleted.
- A replica with members keeps a heartbeat, ``HEARTBEAT + replica``, with an
  idle lifetime of its lease time, refreshed every third of it. When a
  heartbeat expires (a commit every replica sees), the surviving replicas
  take that replica's members out of every room; the commit reads the
  heartbeat, so among replicas racing to do it exactly one commits, and a
  replica that was only slow and wrote its heartbeat again keeps them. A
  replica starting up does the same for every replica without a heartbeat
  (one that died while nobody was there to see it expire).

No Streamlit import here: the adapter says who is running and who is still
connected.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from pyrsistent import PMap, pmap

from . import _streamlit as adapter
from ._base import MISSING, Change
from ._errors import ServerStateError, ServerStateTypeError
from ._expiry import Lifetime
from ._keys import HIDDEN, check_key
from ._store import Store

__all__ = ["HEARTBEAT", "ROOM", "Member", "Presence", "room_of"]

_LOG = logging.getLogger("server_state")

ROOM = HIDDEN + "presence" + HIDDEN
"""The prefix of a room's key: ``ROOM + room``."""
HEARTBEAT = HIDDEN + "replica" + HIDDEN
"""The prefix of a replica's heartbeat: ``HEARTBEAT + replica``."""

# How often this process checks that its members' tabs are still connected
# (seconds): a closed tab leaves within about this long.
CHECK_PERIOD = 1.0
NAME_LIMIT = 200  # characters of a display name


class Member(NamedTuple):
    """One member of a room: its display ``name``, ``since`` when it is in
    the room (a UTC datetime), and whether it is the session asking (``me``)."""

    name: str
    since: datetime.datetime
    me: bool


def room_of(key: str) -> str | None:
    """The room a key holds (None: not a room)."""
    return key[len(ROOM) :] if key.startswith(ROOM) else None


def _replica_of(member: str) -> str:
    return member.rpartition("/")[0]


def check_room(where: str, room: object) -> str:
    if not isinstance(room, str):
        raise ServerStateTypeError(
            None,
            f"{where}: the room must be a str naming it (e.g. 'lobby'), got {room!r} ({type(room).__name__}).",
        )
    room = check_key(room)
    if not room.strip():
        raise ServerStateTypeError(None, f"{where}: the room name is empty; name the room, e.g. 'lobby'.")
    return room


def check_name(room: str, name: object) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str):
        raise ServerStateTypeError(
            None,
            f"server_state.presence({room!r}, name=...): name must be a str shown to the others, or None "
            f"for a guest name; got {name!r} ({type(name).__name__}).",
        )
    name = " ".join(str.__str__(name).split())
    if len(name) > NAME_LIMIT:
        raise ServerStateTypeError(
            None,
            f"server_state.presence({room!r}, name=...): the name has {len(name)} characters; "
            f"keep it to {NAME_LIMIT}.",
        )
    return name or None


def guest_name(sid: str) -> str:
    """A name that stays the same for the session's life: ``Guest 3f2a``."""
    return "Guest " + sid.replace("-", "")[:4]


def members_of(value: Any, me: str | None) -> list[Member]:
    """A room's map as the sorted list of its members: first come first,
    then by member id (stable across replicas and runs)."""
    if value is MISSING or not value:
        return []
    rows = sorted(value.items(), key=lambda item: (item[1][1], item[0]))
    return [
        Member(entry[0], datetime.datetime.fromtimestamp(entry[1], datetime.UTC), member == me)
        for member, entry in rows
    ]


class Presence:
    """The rooms of one ``ServerState``: joins, leaves, and this process's
    sessions and heartbeat.

    ``store()`` is the state's store now (``configure`` may replace it),
    ``bind(key, version)`` binds the running session to a read, ``changed``
    announces a commit; ``live(sid)`` says whether a session is still
    connected (the adapter's answer, by default)."""

    def __init__(
        self,
        store: Callable[[], Store],
        bind: Callable[[str, int], None],
        changed: Callable[[tuple[Change, ...]], None],
        live: Callable[[str], bool] | None = None,
    ) -> None:
        self._store = store
        self._bind = bind
        self._changed = changed
        self._live = live if live is not None else _connected
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._mine: dict[str, set[str]] = {}  # session id -> rooms it is in (followed sessions only)
        # Replicas whose members to take out (None: any without a heartbeat).
        self._dead: set[str | None] = set()
        self._thread: threading.Thread | None = None
        self._beat_due = 0.0  # monotonic time of the next heartbeat refresh
        self._swept_at_start = False
        self._closed = False

    # -- the facade's calls ------------------------------------------------------

    def join(self, room: str, name: str | None, sid: str | None = None) -> list[Member]:
        """The running session (or ``sid``) is in ``room`` under its display
        name; returns who is here, binding the session to the room."""
        where = f"server_state.presence({room!r})"
        room = check_room("server_state.presence(room)", room)
        name = check_name(room, name)
        if sid is None:
            sid = adapter.current_session_id()
            if sid is None:
                raise ServerStateError(
                    f"{where} says that the running session is in the room, and no session is running "
                    f"here (a background thread, or a script run outside `streamlit run`); read who is "
                    f"here without joining with server_state.presence({room!r}, join=False)."
                )
            name = adapter.logged_in_name() or name
        display = name or guest_name(sid)
        store = self._store()
        me = self.member_id(store, sid)
        key = ROOM + room
        if store.shared:
            self._ensure_heartbeat(store)
        value, version = store.entry(key)
        entry = None if value is MISSING else value.get(me)
        if entry is None or entry[0] != display:

            def add(members: PMap[str, Any]) -> PMap[str, Any]:
                had = members.get(me)
                if had is not None and had[0] == display:
                    return members
                return members.set(me, (display, had[1] if had is not None else round(time.time(), 3)))

            value, version, change = store.update(key, add, pmap())
            if change is not None:
                self._changed((change,))
        if self._live(sid):
            with self._lock:
                self._mine.setdefault(sid, set()).add(room)
                self._start()
        self._bind(key, version)
        return members_of(value, me)

    def members(self, room: str, sid: str | None = None) -> list[Member]:
        """Who is in ``room``, binding the running session to it, joining nothing."""
        room = check_room("server_state.presence(room, join=False)", room)
        store = self._store()
        if sid is None:
            sid = adapter.current_session_id()
        value, version = store.entry(ROOM + room)
        self._bind(ROOM + room, version)
        return members_of(value, None if sid is None else self.member_id(store, sid))

    def leave(self, room: str, sid: str | None = None) -> bool:
        """The running session (or ``sid``) leaves ``room``: False when it was
        not in it."""
        room = check_room("server_state.leave(room)", room)
        if sid is None:
            sid = adapter.current_session_id()
            if sid is None:
                raise ServerStateError(
                    f"server_state.leave({room!r}) takes the running session out of the room, and no "
                    "session is running here."
                )
        with self._lock:
            rooms = self._mine.get(sid)
            if rooms is not None:
                rooms.discard(room)
                if not rooms:
                    del self._mine[sid]
        store = self._store()
        return bool(self._remove(store, {ROOM + room: {self.member_id(store, sid)}}))

    def rooms(self) -> dict[str, list[Member]]:
        """Every room with its members, binding nothing (the inspector)."""
        store = self._store()
        values = store.state.values
        out: dict[str, list[Member]] = {}
        for key in store.mirror.latest:
            room = room_of(key)
            if room is not None:
                out[room] = members_of(values.get(key, MISSING), None)
        return dict(sorted(out.items()))

    def heartbeats(self) -> dict[str, float]:
        """Replicas with a heartbeat, and when it runs out (Unix time)."""
        store = self._store()
        out: dict[str, float] = {}
        for key in list(store.mirror.latest):
            if key.startswith(HEARTBEAT):
                deadline = store.deadline(key)
                if deadline is not None:
                    out[key[len(HEARTBEAT) :]] = deadline[0]
        return out

    def saw(self, changes: Iterable[Change]) -> None:
        """Commits made elsewhere or by the expiry clock: a heartbeat that
        expired (or was deleted) sends that replica's members out, done by
        this process's presence thread (never in the thread that delivers
        commits)."""
        for change in changes:
            if change.new is MISSING and change.key.startswith(HEARTBEAT):
                with self._lock:
                    self._dead.add(change.key[len(HEARTBEAT) :])
                    self._start()

    def close(self) -> None:
        """Stop this process's presence thread (tests; a process going away)."""
        with self._lock:
            self._closed = True
            self._wake.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)

    # -- member ids, heartbeats ----------------------------------------------------

    @staticmethod
    def replica(store: Store) -> str:
        name = getattr(store.committer, "replica", None)
        return name if isinstance(name, str) else "local"

    def member_id(self, store: Store, sid: str) -> str:
        return self.replica(store) + "/" + sid

    @staticmethod
    def _ttl(store: Store) -> float:
        ttl = getattr(store.committer, "lease_ttl", None)
        return float(ttl) if isinstance(ttl, (int, float)) and ttl > 0 else 10.0

    def _ensure_heartbeat(self, store: Store) -> None:
        """Before a member of this replica is written: its heartbeat exists."""
        key = HEARTBEAT + self.replica(store)
        if store.entry(key)[0] is not MISSING:
            return
        change = store.set(key, round(time.time(), 3), Lifetime(self._ttl(store), None))
        if change is not None:
            self._changed((change,))
        with self._lock:
            self._beat_due = time.monotonic() + self._ttl(store) / 3
            if not self._swept_at_start:
                self._swept_at_start = True
                self._dead.add(None)
            self._start()

    def _refresh_heartbeat(self, store: Store) -> None:
        key = HEARTBEAT + self.replica(store)
        life = Lifetime(self._ttl(store), None)
        if store.entry(key)[0] is MISSING:
            changes: tuple[Change, ...] = ()
            change = store.set(key, round(time.time(), 3), life)
            if change is not None:
                changes = (change,)
        else:
            changes = store.set_lifetime(key, life)
        if changes:
            self._changed(changes)

    # -- leaving -------------------------------------------------------------------

    def _remove(self, store: Store, by_room: dict[str, set[str]]) -> tuple[Change, ...]:
        """Take members out of rooms, in one commit; an empty room is deleted."""

        def drop(state: PMap[str, Any]) -> PMap[str, Any]:
            for key, ids in by_room.items():
                state = _without(state, key, ids)
            return state

        return self._commit(store, drop)

    def _sweep(self, store: Store, dead: set[str | None]) -> tuple[Change, ...]:
        """Take out of every room the members of the replicas in ``dead``
        (None in it: of every replica) that have no heartbeat, but this one's."""
        me = self.replica(store)
        rooms = [key for key in list(store.mirror.latest) if key.startswith(ROOM)]
        anyone = None in dead

        def drop(state: PMap[str, Any]) -> PMap[str, Any]:
            alive: dict[str, bool] = {}
            for key in rooms:
                leaving = []
                for member in state.get(key) or ():
                    replica = _replica_of(member)
                    if replica == me or not (anyone or replica in dead):
                        continue
                    if replica not in alive:  # read in the commit: a heartbeat written meanwhile conflicts
                        alive[replica] = state.get(HEARTBEAT + replica) is not None
                    if not alive[replica]:
                        leaving.append(member)
                state = _without(state, key, leaving)
            return state

        return self._commit(store, drop)

    def _commit(self, store: Store, drop: Callable[[PMap[str, Any]], PMap[str, Any]]) -> tuple[Change, ...]:
        _, changes = store.transact(drop)
        if changes:
            self._changed(changes)
        return changes

    def check(self) -> None:
        """One round of the presence thread: sessions no longer connected
        leave their rooms, dead replicas' members go, the heartbeat is
        refreshed when due."""
        store = self._store()
        with self._lock:
            gone = {sid: self._mine.pop(sid) for sid in [s for s in self._mine if not self._live(s)]}
            dead, self._dead = self._dead, set()
            beat = bool(self._mine) and store.shared and time.monotonic() >= self._beat_due
            if beat:
                self._beat_due = time.monotonic() + self._ttl(store) / 3
        if gone:
            by_room: dict[str, set[str]] = {}
            for sid, rooms in gone.items():
                member = self.member_id(store, sid)
                for room in rooms:
                    by_room.setdefault(ROOM + room, set()).add(member)
            self._remove(store, by_room)
        if beat:
            self._refresh_heartbeat(store)
        if dead and store.shared:
            self._sweep(store, dead)

    def followed(self) -> int:
        """How many sessions of this process are in a room (diagnostics, tests)."""
        with self._lock:
            return len(self._mine)

    # -- the thread ------------------------------------------------------------------

    def _start(self) -> None:
        """(With ``_lock`` held.) The thread runs while there is work."""
        if self._closed:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="server_state presence", daemon=True)
            self._thread.start()
        elif self._dead:
            self._wake.notify_all()

    def _run(self) -> None:
        while True:
            if self._store().closed:  # (a store closed under us: its backend is gone)
                with self._lock:
                    self._thread = None
                return
            try:
                self.check()
            except Exception:  # a backend fault: the next round tries again
                _LOG.exception("server_state presence: could not update the rooms")
            with self._lock:
                if self._closed or (not self._mine and not self._dead):
                    self._thread = None
                    return
                period = min(CHECK_PERIOD, self._ttl(self._store()) / 3)
                if not self._dead:
                    self._wake.wait(period)
                if self._closed:
                    self._thread = None
                    return


def _without(state: PMap[str, Any], key: str, members: Iterable[str]) -> PMap[str, Any]:
    """``state`` with ``members`` out of the room at ``key`` (an emptied room deleted)."""
    room = state.get(key)
    if not room:
        return state
    kept = room
    for member in members:
        kept = kept.discard(member)
    if kept is room:
        return state
    return state.set(key, kept) if kept else state.remove(key)


def _connected(sid: str) -> bool:
    return adapter.active_session(sid) is not None
