"""The Redis committer: several replicas, one state.

Each replica keeps a mirror of the state (``server_state._mirror``), read
exactly as the memory backend reads it (no Redis call on a read). All writes
go to Redis first, as one Lua script per commit (``_scripts.COMMIT``):

1. a commit already recorded under its transaction id is a replay (redis-py
   or this module retried after a lost reply): it returns the recorded
   sequence number and writes nothing;
2. everything is checked before anything is written (Lua has no rollback):
   the lease tokens of the keys this thread holds locked (fencing), the epoch
   of the data, the expected version of every key the commit depends on, and
   for ``update``/``transact`` that no other replica holds a key's lock;
3. the global commit sequence is bumped; values and versions are written; one
   stream entry records the commit (sequence, epoch, origin, writes and
   deletes); the transaction id is recorded for replays.

The parts, one job each: ``_scripts`` (the Lua, with its contract),
``_follower`` (the stream follower and the resync), ``_leases`` (leases and
the leased lock), ``_layout`` (big values item by item, patches, the stream
entry's format). This module commits and brings its own commits into the
mirror in sequence order.

Versions. Mirror versions are the mirror's own commit counter (every applied
commit or resync is one step), so they only grow, across resyncs and epochs.
The Redis version of each present key (the sequence of the commit that wrote
it) is kept beside the mirror (``rver``); a commit expects those.

Big values travel as patches: a write of a key kept item by item whose new
value keeps the stored value's first items (by identity: an append, a change
at the end), or shares all but a few buckets of its map, sends only the new
tail or the changed entries; the commit script checks that Redis holds that
layout and length (the key's version, which every write checks, proves the
content) and applies it; each follower applies it to its mirror's structure
in O(patch · log n). Anything identity cannot prove, or a layout Redis does
not have, is sent whole: its items are staged first with plain commands and
renamed into place by the script.

Only ``backends/redis/`` imports ``redis``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any, NamedTuple

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..._base import MISSING, Change, Origin
from ..._errors import ServerStateConnectionError, ServerStateError, ServerStateLeaseError
from .._codec import encode_items, make_codec, map_items
from .._seam import DEFAULT_NAMESPACE, Announce, commit_one_by_commit, redact
from . import _scripts
from ._follower import NET_ERRORS, Follower
from ._layout import LAYOUT_MIN, layout_header, origin_text, patch_op
from ._leases import LeasedLock, Leases

if TYPE_CHECKING:
    from ..._mirror import Mirror

__all__ = ["NET_ERRORS", "RedisCommitter", "RedisNames"]

_LOG = logging.getLogger("server_state")

# How long a write keeps retrying while Redis cannot be reached.
WRITE_PATIENCE = 10.0
# How long a commit waits for the follower to bring the mirror up to a
# sequence before it resyncs itself.
CATCH_UP = 5.0
STREAM_MAXLEN = 100_000  # ~: Redis trims in whole nodes
TX_TTL = 300  # seconds a transaction id is remembered for replays
BLOCK_MS = 1000
# Seconds the follower lets commits gather after each read: one XREAD then
# brings them all. Measured with one writer and 3 replicas following: XREADs
# per commit 2.8 -> 0.65, Redis CPU per commit -35%, update() -30% (the
# writer's own follower wakes less often); a commit reaches the other
# replicas up to that much later.
BATCH = 0.001
STAGE_CHUNK = 10_000  # items per command when staging a big value (an even number: map entries)
STAGE_TTL_MS = 300_000  # a staged value nobody committed is gone after this


class RedisNames(NamedTuple):
    """The Redis keys of one namespace (see ``_scripts``); the prefixes take a key."""

    data: str
    ver: str
    meta: str
    log: str
    tx: str  # + transaction id
    lease: str  # + key
    list: str  # + key: a sequence's items
    hash: str  # + key: a map's entries
    stage: str  # + txid:key: a big value's items on their way in

    @classmethod
    def of(cls, namespace: str) -> RedisNames:
        tag = "{ss:" + namespace + "}"
        return cls(
            *(
                f"{tag}:{part}"
                for part in ("data", "ver", "meta", "log", "tx:", "lease:", "l:", "h:", "stage:")
            )
        )


class Pending:
    """A commit of this replica on its way into the mirror."""

    __slots__ = ("changes", "commit", "epoch")

    def __init__(self, epoch: str | None, commit: tuple[Any, ...]) -> None:
        self.changes: tuple[Change, ...] | None = None
        self.epoch = epoch  # of the data it was committed to
        # What ``apply_commit`` takes for it (writes, deletes, tokens, who,
        # layouts): the follower applies these very objects when the commit
        # comes back in the stream first, rather than decoding it.
        self.commit = commit


class RedisCommitter:
    """A mirror of a state kept in Redis, shared by every replica that uses
    the same URL and namespace."""

    shared = True  # a transaction's conflict with another replica is no bug of fn: retry

    def __init__(
        self,
        url: str,
        *,
        namespace: str | None = None,
        serializer: str | None = None,
        signing_key: bytes | str | None = None,
        lease_ttl: float | None = None,
        stream_maxlen: int = STREAM_MAXLEN,
        clients: tuple[Any, Any] | None = None,
        block_ms: int = BLOCK_MS,
        replica: str | None = None,
    ) -> None:
        """``clients``: the (commit, follower) redis-py clients to use instead
        of connecting to ``url`` (tests, custom connection setups); both must
        not retry by themselves. ``replica``: this replica's name in the
        history of every replica (default ``host:pid``)."""
        self.replica = replica or f"{socket.gethostname()}:{os.getpid()}"
        self.url = url
        self.namespace = namespace or DEFAULT_NAMESPACE
        self.lease_ttl = float(lease_ttl) if lease_ttl is not None else 10.0
        if self.lease_ttl <= 0.1:
            raise ServerStateError(f"server_state: lease_ttl must be more than 0.1 s, got {lease_ttl!r}.")
        self.serializer = serializer or "tagged"
        self.codec = make_codec(self.serializer, signing_key)
        self._maxlen = str(int(stream_maxlen))
        self.block_ms = int(block_ms)
        self.batch = BATCH
        try:
            if clients is not None:
                self.client, self.follow_client = clients
            else:
                self.client, self.follow_client = self.connect(url)
        except ValueError as exc:
            raise ServerStateError(
                f"SERVER_STATE_URL={redact(url)} is not a Redis URL that redis-py accepts: {exc}"
            ) from None
        self.names = names = RedisNames.of(self.namespace)
        self.commit_script = self.client.register_script(_scripts.COMMIT)
        self.patches = self.codec.name == "tagged"  # pickles stay whole (one signature each)

        # Where the mirror is on Redis' track (changed under the mirror's lock).
        self.rver: dict[str, int] = {}  # present key -> Redis version
        self.layout: dict[str, bytes] = {}  # key kept item by item in Redis -> its header
        self.rseq = 0  # the Redis sequence the mirror is at
        self.epoch: str | None = None
        self.run_id = ""  # of the Redis process the mirror was synced from
        self.last_id: bytes = b"0-0"  # of the stream entry the mirror is at
        self.sync_gen = 0  # resyncs so far (the follower restarts from last_id after one)
        self.own: dict[str, Pending] = {}  # txid -> this replica's commit in flight
        self.patched = 0  # writes sent as patches (for tests and benchmarks)
        self.resyncs = 0

        self.closing = threading.Event()
        self._start_lock = threading.Lock()
        self._started = False
        self._threads: list[threading.Thread] = []
        self.leases = Leases(
            self.client,
            names.lease,
            names.meta,
            self.lease_ttl,
            self.closing,
            self.catch_up,
            self.open,
            NET_ERRORS,
            WRITE_PATIENCE,
        )
        self.follower = Follower(self)

    @staticmethod
    def connect(url: str) -> tuple[Any, Any]:
        # No retries inside redis-py: this module retries, reusing the
        # transaction id, so a retried commit is never applied twice. The
        # follower's reads block for BLOCK_MS: its socket waits longer.
        no_retry = Retry(NoBackoff(), 0)
        client = redis.Redis.from_url(
            url, retry=no_retry, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30
        )
        follower = redis.Redis.from_url(
            url, retry=no_retry, socket_timeout=BLOCK_MS / 1000 + 5, socket_connect_timeout=5
        )
        return client, follower

    # -- the seam ---------------------------------------------------------------

    def bind(self, mirror: Mirror, announce: Announce, origin: Callable[[], Origin]) -> None:
        self.mirror = mirror
        self.announce = announce
        self._origin = origin
        self.caught_up = threading.Condition(mirror.lock)  # the mirror moved forward

    @property
    def lock_factory(self) -> Callable[[str, threading.RLock], LeasedLock]:
        return lambda key, local: LeasedLock(self.leases, key, local)

    @property
    def used(self) -> bool:
        return self._started

    def position(self) -> int:
        return self.rseq

    @property
    def epoch_b(self) -> bytes:
        """The epoch as stream entries carry it."""
        return (self.epoch or "").encode()

    def head(self) -> int:
        self.open()
        return int(self.client.hget(self.names.meta, "seq") or 0)

    def close(self) -> None:
        """Stop the follower and the lease renewer and close the connections."""
        self.closing.set()
        for client in (self.follow_client, self.client):
            with contextlib.suppress(Exception):  # closing anyway
                client.connection_pool.disconnect()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=self.block_ms / 1000 + 6)

    def __repr__(self) -> str:
        return f"<RedisCommitter {redact(self.url)} namespace={self.namespace!r}>"

    def open(self) -> None:
        if not self._started:
            self._start()

    def _start(self) -> None:
        with self._start_lock:
            if self._started:
                return
            if self.closing.is_set():
                raise ServerStateError(f"server_state: {self!r} was closed.")
            try:
                self.client.ping()
            except NET_ERRORS as exc:
                raise ServerStateConnectionError(
                    None,
                    f"server_state could not reach Redis at {redact(self.url)} ({exc}); nothing "
                    "was read or written. Check that Redis runs there and that SERVER_STATE_URL is right.",
                ) from exc
            self._check_policy()
            self.resync()
            follower = threading.Thread(
                target=self.follower.run, name=f"server_state-follower-{self.namespace}", daemon=True
            )
            renewer = threading.Thread(
                target=self.leases.renew_forever, name=f"server_state-leases-{self.namespace}", daemon=True
            )
            self._threads = [follower, renewer]
            follower.start()
            renewer.start()
            self._started = True

    def _check_policy(self) -> None:
        try:
            policy = self.client.config_get("maxmemory-policy").get("maxmemory-policy")
        except redis.ResponseError:  # CONFIG is often forbidden on managed Redis
            _LOG.info("server_state: could not check Redis' maxmemory-policy (CONFIG is not allowed).")
            return
        if isinstance(policy, bytes):
            policy = policy.decode()
        if policy and policy != "noeviction":
            warnings.warn(
                f"server_state: Redis at {redact(self.url)} has maxmemory-policy={policy}: when it is "
                "full it may evict keys of the shared state. Set maxmemory-policy noeviction.",
                RuntimeWarning,
                stacklevel=5,
            )

    # -- commits ---------------------------------------------------------------------

    def lagged(self, seen: int) -> bool:
        """Whether the mirror a function read (at mirror sequence ``seen``)
        was behind Redis; then it catches up first."""
        if self.mirror.seq != seen:
            return True  # it has moved on already
        seen_rseq = self.rseq
        try:
            seq = int(self.client.hget(self.names.meta, "seq") or 0)
        except NET_ERRORS:
            return False
        if seq <= seen_rseq:
            return False
        self.catch_up(seq)
        return True

    def confirm(self, key: str, version: int) -> bool:
        """An equal write changes nothing only if Redis agrees the mirror's
        value is the newest: else a stale mirror would drop a write."""
        self.open()
        mirror = self.mirror
        with mirror.lock:
            if mirror.entry(key)[1] != version:
                return False
            expect = {key: self.rver.get(key, 0)}
            epoch, seen = self.epoch, self.rseq
        reply = self._run(key, expect, "", {}, (), epoch, respecting=False)
        return self._judge(reply, key, seen) is not None

    def commit_one(
        self, key: str, expected: int, value: Any, token: Any, who: str, respect: bool
    ) -> Change | None:
        return commit_one_by_commit(self, key, expected, value, token, who, respect)

    def commit(
        self,
        expected: dict[str, int] | None,
        writes: dict[str, Any],
        deletes: tuple[str, ...],
        *,
        since: int,
        conflicts: AbstractSet[str] | None,
        tokens: dict[str, Any],
        who: str,
        respect: bool,
    ) -> tuple[Change, ...] | None:
        self.open()
        mirror = self.mirror
        first = next(iter(writes), deletes[0] if deletes else None)
        # Which written keys the commit checks in Redis at the version this
        # mirror has (all of them when it requires the whole sequence): only
        # those may travel as patches of what the mirror holds.
        checked: AbstractSet[str] | None = (
            expected.keys() if expected is not None else conflicts if conflicts is not None else None
        )
        patches = self.patches
        who = f"{self.replica} · {who}"
        while True:
            # Encoding first, outside every lock: a value Redis cannot take
            # fails here, before anything is sent.
            ops, layouts, bases, stages = self._encode_writes(writes, checked if patches else set())
            with mirror.lock:
                if mirror.exclusive is not None:
                    mirror.wait_turn()
                if not mirror.still(expected, since, conflicts):
                    return None
                latest, layout = mirror.latest, self.layout
                if any(latest.get(k) is not e or layout.get(k) != layouts[k] for k, e in bases.items()):
                    return None  # the mirror moved under the patch: the caller goes again
                # What Redis must still have: the versions this mirror has of
                # the keys the commit depends on (all keys: the sequence).
                depends = expected if expected is not None else conflicts
                require = "" if depends is not None else str(self.rseq)
                rver = self.rver
                expect = {key: rver.get(key, 0) for key in depends or ()}
                epoch, seen = self.epoch, self.rseq
            txid = uuid.uuid4().hex
            pending = self.own[txid] = Pending(epoch, (writes, deletes, tokens, who, layouts))
            try:
                reply = self._run(first, expect, require, ops, deletes, epoch, txid, who, stages, respect)
                if reply[0] == -5:
                    # Redis does not hold the layout the patch was made for
                    # (it cannot prove the base): send the values whole.
                    _LOG.info("server_state: a patch of %r did not fit Redis' copy; sent whole", first)
                    patches = False
                    continue
                seq = self._judge(reply, first, seen)
                if seq is None:
                    return None
                self.patched += len(bases)
                return self._landed(pending, seq, writes, deletes, tokens, who, layouts)
            finally:
                self.own.pop(txid, None)

    def _encode_writes(
        self, writes: dict[str, Any], checked: AbstractSet[str] | None
    ) -> tuple[dict[str, list[Any]], dict[str, bytes | None], dict[str, Any], dict[str, list[bytes]]]:
        """The commit script's arguments for each write, the layout each
        value gets in Redis, the mirror entries the patches among them were
        made against (keys of ``checked``, all when None, may be patches),
        and the items of the values sent whole item by item (staged before
        the script runs)."""
        ops: dict[str, list[Any]] = {}
        layouts: dict[str, bytes | None] = {}
        bases: dict[str, Any] = {}
        stages: dict[str, list[bytes]] = {}
        codec = self.codec
        latest = self.mirror.latest
        for key, value in writes.items():
            header = layout_header(value) if self.patches else None
            if header is None:
                ops[key], layouts[key] = ["v", codec.encode(key, value)], None
                continue
            layouts[key] = header
            if (checked is None or key in checked) and self.layout.get(key) == header:
                entry = latest.get(key)
                # (The very object again is a touch: something inside it
                # changed in place, which identity cannot see.)
                op = (
                    patch_op(key, header, entry[0], value)
                    if entry is not None and entry[0] is not value
                    else None
                )
                if op is not None:
                    ops[key], bases[key] = op, entry
                    continue
            if len(value) < LAYOUT_MIN:
                ops[key], layouts[key] = ["v", codec.encode(key, value)], None
                continue
            items = encode_items(key, value, value if header[:1] == b"L" else map_items(value))
            ops[key] = [header[:1].decode(), header, len(items), b"".join(items)]
            stages[key] = items
        return ops, layouts, bases, stages

    def _run(
        self,
        key: str | None,
        expect: dict[str, int],
        require: str,
        ops: dict[str, list[Any]],
        deletes: Iterable[str],
        epoch: str | None,
        txid: str = "",
        who: str = "",
        stages: dict[str, list[bytes]] | None = None,
        respecting: bool = False,
    ) -> list[Any]:
        """Send one commit (or, with nothing to write, one check); retries
        on connection errors with the same transaction id until
        ``WRITE_PATIENCE`` is spent. ``respecting``: wait while another
        replica holds the lock of a key written (``update``/``transact``)."""
        names = self.names
        leases = self.leases.held()
        deletes = list(deletes)
        respect: list[str] = []
        if respecting:
            respect = [names.lease + k for k in (*ops, *deletes) if names.lease + k not in leases]
        args: list[Any] = [
            epoch or "",
            require,
            self._maxlen,
            origin_text(self._origin(), who),
            txid,
            TX_TTL,
            len(expect),
            len(leases),
            len(respect),
            len(ops),
            len(deletes),
        ]
        for k, v in expect.items():
            args += (k, v)
        args += leases.values()
        aux: list[str] = []
        stage = f"{names.stage}{txid}:"
        for k, op in ops.items():
            args.append(k)
            args += op
            aux += (names.list + k, names.hash + k, stage + k)
        args += deletes
        for k in deletes:
            aux += (names.list + k, names.hash + k, stage + k)
        staged = False
        keys = [names.data, names.ver, names.meta, names.log, names.tx + txid, *leases, *respect, *aux]
        deadline = time.monotonic() + WRITE_PATIENCE
        pause = 0.005
        restaged = 0
        while True:
            try:
                if stages and not staged:
                    self.stage(stage, ops, stages)
                    staged = True
                reply = self.commit_script(keys=keys, args=args, client=self.client)
            except NET_ERRORS as exc:
                if time.monotonic() + pause > deadline or self.closing.is_set():
                    written = (
                        "nothing was written"
                        if not txid
                        else (
                            "if the last attempt reached Redis it was applied once, and this replica "
                            "shows it when Redis is back; else nothing was written"
                        )
                    )
                    raise ServerStateConnectionError(
                        key,
                        f"server_state could not write {key!r} to Redis at {redact(self.url)} for "
                        f"{WRITE_PATIENCE:.0f} s ({exc}): {written}. Reads still show the last state seen.",
                    ) from exc
                self.closing.wait(pause)
                pause = min(pause * 2, 0.5)
                continue
            except redis.ResponseError as exc:
                raise ServerStateError(
                    f"server_state: Redis refused the commit of {key!r} ({exc}); nothing was written."
                ) from exc
            reply[0] = int(reply[0])
            if reply[0] == -2:
                self.leases.wait_free(respect[int(reply[1]) - 1], list(leases))
                continue
            if reply[0] == -6:  # a staging key expired or was lost: stage again
                restaged += 1
                if restaged > 3:
                    raise ServerStateError(
                        f"server_state: Redis did not keep the items of {key!r} staged for the commit; "
                        "nothing was written."
                    )
                staged = False
                continue
            if stages and reply[0] != 1:
                with contextlib.suppress(*NET_ERRORS):
                    self.client.delete(*(stage + k for k in stages))  # (else they expire)
            return [int(x) for x in reply]

    def stage(self, stage: str, ops: dict[str, list[Any]], stages: dict[str, list[bytes]]) -> None:
        """Push the items of the values sent whole item by item to their
        staging keys (plain commands, not the script: see ``_scripts``); the
        commit script renames them into place."""
        pipe = self.client.pipeline(transaction=False)
        for k, items in stages.items():
            name = stage + k
            pipe.delete(name)
            command = "RPUSH" if ops[k][0] == "L" else "HSET"
            for i in range(0, len(items), STAGE_CHUNK):
                pipe.execute_command(command, name, *items[i : i + STAGE_CHUNK])
            pipe.pexpire(name, STAGE_TTL_MS)
        pipe.execute()

    def _judge(self, reply: list[int], key: str | None, seen: int) -> int | None:
        """The Redis sequence of a commit that landed, or None (after the
        mirror caught up with what made it fail) to retry."""
        status = reply[0]
        if status in (1, 2):
            return reply[1]
        if status == 0 or status == -4:
            if reply[1] <= seen:
                # Redis is not ahead of the mirror the commit was checked
                # against, yet disagrees with it: it went back (an older
                # dump, a failover). Start again from what it has.
                self.resync(full=True)
            else:
                self.catch_up(reply[1])
            return None
        if status == -3:
            self.resync()
            return None
        lost = list(self.leases.held())[reply[1] - 1][len(self.names.lease) :]
        raise ServerStateLeaseError(
            key or lost,
            f"server_state: the lock of {lost!r} held by this thread expired (or was taken over) before "
            f"the write of {key!r}: nothing was written. A `with server_state_lock[...]:` block "
            f"must not stall for longer than the lease ({self.lease_ttl:g} s, SERVER_STATE_LEASE_TTL).",
        )

    def _landed(
        self,
        pending: Pending,
        seq: int,
        writes: dict[str, Any],
        deletes: tuple[str, ...],
        tokens: dict[str, Any],
        who: str,
        layouts: dict[str, bytes | None],
    ) -> tuple[Change, ...]:
        """Our commit is in Redis at ``seq``: into the mirror in sequence
        order (applied here if it is next, else by the follower)."""
        deadline = time.monotonic() + CATCH_UP
        with self.mirror.lock:
            while True:
                if pending.changes is not None:
                    return pending.changes
                if self.epoch != pending.epoch:
                    break
                if self.rseq == seq - 1:
                    return self.apply_commit(writes, deletes, tokens, seq, who=who, layouts=layouts)
                if self.rseq >= seq:  # a resync took it in (and announced it)
                    return self._taken(writes, deletes)
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.caught_up.wait(left)
        if self.epoch == pending.epoch:
            self.resync()
        with self.mirror.lock:
            if pending.changes is not None:
                return pending.changes
            if self.epoch == pending.epoch and self.rseq >= seq:
                return self._taken(writes, deletes)
        key = next(iter(writes), deletes[0] if deletes else None)
        raise ServerStateConnectionError(
            key,
            f"server_state: the write of {key!r} reached Redis at {redact(self.url)}, which then lost "
            "its data (it restarted empty or failed over to a copy without the write): the write is "
            "lost with it. This replica now shows what Redis has.",
        )

    def _taken(self, writes: dict[str, Any], deletes: tuple[str, ...]) -> tuple[Change, ...]:
        """Under the mirror's lock: the changes of our commit that a resync
        took into the mirror (their old values are no longer known)."""
        entry = self.mirror.entry
        return (
            *(Change(k, MISSING, v, entry(k)[1]) for k, v in writes.items()),
            *(Change(k, MISSING, MISSING, entry(k)[1]) for k in deletes),
        )

    def apply_commit(
        self,
        writes: dict[str, Any],
        deletes: Iterable[str],
        tokens: dict[str, Any],
        seq: int,
        unreadable: Iterable[str] = (),
        who: str = "",
        layouts: dict[str, bytes | None] | None = None,
    ) -> tuple[Change, ...]:
        """Under the mirror's lock: the commit at Redis sequence ``seq`` (the
        next one) into the mirror. ``unreadable`` keys were written with a
        payload this replica refuses to decode: absent here, but their Redis
        version is known, so a write of them here can replace them.
        ``layouts``: how Redis keeps each written value (None: whole)."""
        rver, layout = self.rver, self.layout
        deletes = list(deletes)
        for key in writes:
            rver[key] = seq
            header = layouts.get(key) if layouts is not None else None
            if header is None:
                layout.pop(key, None)
            else:
                layout[key] = header
        for key in deletes:
            rver.pop(key, None)
            layout.pop(key, None)
        unreadable = list(unreadable)
        for key in unreadable:
            rver[key] = seq
            layout.pop(key, None)
        changes = self.mirror.apply(writes, (*deletes, *unreadable), tokens, who or "another replica")
        self.rseq = seq
        self.caught_up.notify_all()
        return changes

    def catch_up(self, seq: int) -> None:
        """Wait until the mirror is at Redis sequence ``seq`` (resync if the
        follower does not bring it there in time)."""
        deadline = time.monotonic() + CATCH_UP
        with self.mirror.lock:
            while self.rseq < seq:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.caught_up.wait(left)
            else:
                return
        self.resync()

    def resync(self, full: bool = False) -> None:
        """Bring the mirror to Redis' state in one swap (see ``Follower.resync``)."""
        self.follower.resync(full)
