"""The stream follower and the resync: how commits made by other replicas
reach this replica's mirror.

One follower thread per replica reads the stream from its last id (``XREAD
BLOCK``), so a dropped connection loses nothing, and applies each entry in
one swap of the mirror, in sequence order; the mirror is always the state
after some commit. A sequence gap (the stream was trimmed past us), a new
epoch (Redis was wiped, or failed over to a replica that lacks writes) or a
sequence that went back triggers a full resync: one consistent read of the
state (``WATCH`` + ``MULTI``, or one Lua script if commits keep interrupting
it), decoding only the keys whose version changed. Commits made elsewhere
enter the same announce path as local ones, with the rerun round and chain
of the writer (its ``Origin``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from itertools import chain
from typing import TYPE_CHECKING, Any

import redis

from ..._base import LOCAL, Change, Origin
from ..._errors import ServerStateConnectionError, ServerStateError, ServerStatePayloadError
from ..._values import tokens_of, unchanged
from .._codec import decode_items
from .._patches import apply_map_patch, apply_seq_patch
from .._seam import redact
from . import _scripts
from ._layout import build_value, is_header, origin_of, pairs, parse_body, raw_entries

if TYPE_CHECKING:
    from ._committer import RedisCommitter

__all__ = ["NET_ERRORS", "Follower"]

_LOG = logging.getLogger("server_state")

READ_COUNT = 1000  # stream entries one XREAD brings at most
WATCH_TRIES = 5  # optimistic reads of the state before one atomic script reads it

# What a lost or refused connection raises (retried, or reported as a ServerStateConnectionError).
NET_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)


class Follower:
    """Brings one replica's mirror forward: the stream's entries one by one,
    or the whole state at once (``resync``)."""

    def __init__(self, committer: RedisCommitter) -> None:
        self.c = committer
        self._sync_lock = threading.Lock()
        self._snapshot_script = committer.client.register_script(_scripts.SNAPSHOT)

    # -- the stream ---------------------------------------------------------------

    def run(self) -> None:
        """The follower thread's loop, until the replica closes."""
        c = self.c
        client = c.follow_client
        # The XREADs go on a connection of the follower's own, sent and read
        # directly: every commit of this replica comes back here too, and
        # redis-py's command layer (pool, retries, response callbacks) would
        # hold the GIL the committing thread is waiting for on each of them.
        conn = None
        last_id, gen = c.last_id, c.sync_gen
        pause = 0.01
        suspect = 0
        while not c.closing.is_set():
            try:
                if c.sync_gen != gen:
                    last_id, gen = c.last_id, c.sync_gen
                if conn is None:
                    conn = client.connection_pool.get_connection()  # connects: errors as below
                try:
                    conn.send_command(
                        "XREAD", "COUNT", READ_COUNT, "BLOCK", c.block_ms, "STREAMS", c.names.log, last_id
                    )
                    reply = conn.read_response()
                except BaseException:
                    conn.disconnect()  # the next send reconnects
                    raise
                pause = 0.01
                if not reply:
                    suspect = self._idle_check(client, suspect)
                    continue
                got = raw_entries(reply)
                for entry_id, flat in got:
                    # This replica's own commits, applied when they landed, come
                    # back here too: told apart by their sequence (the entry's
                    # first field) without building anything.
                    if flat[0] == b"seq" and int(flat[1]) <= c.rseq and flat[3] == c.epoch_b:
                        last_id = entry_id
                        continue
                    if not self.follow_entry(pairs(flat)):
                        break  # resynced: restart from its position
                    last_id = entry_id
                if c.batch and len(got) < READ_COUNT:
                    # Let the next commits gather: one XREAD brings them all
                    # (Redis serves one read per follower per batch, not per commit).
                    c.closing.wait(c.batch)
            except NET_ERRORS as exc:
                if c.closing.is_set():
                    return
                _LOG.debug("server_state follower: %s; reconnecting in %.2f s", exc, pause)
                c.closing.wait(pause)
                pause = min(pause * 2, 1.0)
                with contextlib.suppress(*NET_ERRORS):
                    self._check_epoch(client)
            except Exception:
                if c.closing.is_set():
                    return
                _LOG.exception("server_state follower failed; resyncing")
                c.closing.wait(pause)
                pause = min(pause * 2, 1.0)
                with contextlib.suppress(Exception):
                    self.resync()

    def follow_entry(self, fields: dict[bytes, bytes]) -> bool:
        """Apply one stream entry; False after a resync it called for."""
        c = self.c
        mirror = c.mirror
        seq = int(fields[b"seq"])
        epoch = fields[b"e"].decode()
        if epoch != c.epoch:
            self.resync()
            return False
        if seq <= c.rseq:
            return True  # ours, applied when it landed, or older than a resync
        if seq != c.rseq + 1:
            self.resync()  # a gap: the stream was trimmed past us
            return False
        txid = fields[b"tx"].decode()
        pending = c.own.get(txid)
        if pending is not None:  # this replica's own commit, not applied yet
            own_writes, own_deletes, own_tokens, own_who, own_layouts = pending.commit
            with mirror.lock:
                if seq != c.rseq + 1 or epoch != c.epoch:
                    return seq <= c.rseq
                if pending.changes is None:
                    pending.changes = c.apply_commit(
                        own_writes, own_deletes, own_tokens, seq, who=own_who, layouts=own_layouts
                    )
                return True
        writes, deletes = parse_body(fields[b"b"])
        decoded: dict[str, Any] = {}
        layouts: dict[str, bytes | None] = {}
        patches: list[tuple[str, str, bytes, list[bytes], list[Any]]] = []
        unreadable: list[str] = []
        for kind, key, header, parts in writes:
            try:
                if kind == "s":
                    decoded[key], layouts[key] = c.codec.decode(key, header), None
                elif kind in ("L", "H"):
                    blob = fields.get(parts[0])
                    if blob is None:
                        raise ServerStatePayloadError(
                            key, f"server_state[{key!r}]: the stream entry lacks its items."
                        )
                    decoded[key] = build_value(key, header, decode_items(key, blob))
                    layouts[key] = header
                else:  # a patch: applied below to the value this mirror has
                    rest = [decode_items(key, p) for p in parts[1:]]
                    patches.append((kind, key, header, parts[0].split(b","), rest))
                    decoded[key], layouts[key] = None, header  # (keeps the order of the writes)
            except ServerStateError:
                _LOG.exception(
                    "server_state: the value of %r from Redis cannot be read; the key is absent here", key
                )
                decoded.pop(key, None)
                unreadable.append(key)
        origin, who = origin_of(fields.get(b"o", b""))
        with mirror.lock:
            if seq != c.rseq + 1 or epoch != c.epoch:
                return seq <= c.rseq
            fit = not patches or self._patch_mirror(patches, decoded)
            if fit:
                changes = c.apply_commit(decoded, deletes, tokens_of(decoded), seq, unreadable, who, layouts)
                pending = c.own.get(txid)
                if pending is not None:
                    pending.changes = changes
                    return True
        if not fit:
            # The mirror does not hold what the patch was made against (a
            # value it could not read): take Redis' state instead.
            self.resync()
            return False
        if changes:
            self._announce(changes, origin)
        return True

    def _patch_mirror(
        self, patches: list[tuple[str, str, bytes, list[bytes], list[Any]]], decoded: dict[str, Any]
    ) -> bool:
        """Under the mirror's lock, with the mirror at the commit before the
        patches' one: the new values into ``decoded``; False when a patch's
        base is not the value here (absent, another layout or length)."""
        latest, layout = self.c.mirror.latest, self.c.layout
        for kind, key, header, numbers, rest in patches:
            entry = latest.get(key)
            if entry is None or layout.get(key) != header or len(entry[0]) != int(numbers[0]):
                return False
            try:
                if kind == "A":
                    decoded[key] = apply_seq_patch(key, entry[0], int(numbers[1]), rest[0])
                else:
                    decoded[key] = apply_map_patch(key, entry[0], rest[0], rest[1])
            except ServerStateError:
                _LOG.exception("server_state: a change of %r from Redis cannot be applied", key)
                return False
        return True

    def _announce(self, changes: tuple[Change, ...], origin: Origin) -> None:
        try:
            self.c.announce(changes, origin)
        except Exception:
            _LOG.exception("server_state: announcing a commit from another replica failed")

    def _idle_check(self, client: Any, suspect: int) -> int:
        """Nothing came for a while: is the mirror still on Redis' track?"""
        c = self.c
        epoch, seq = client.hmget(c.names.meta, ["epoch", "seq"])
        seq = int(seq or 0)
        if epoch is None or epoch.decode() != c.epoch or seq < c.rseq:
            self.resync()
            return 0
        if seq > c.rseq:
            if suspect and seq >= suspect:
                self.resync()  # the stream does not have what meta says was written
                return 0
            return seq
        return 0

    def _check_epoch(self, client: Any) -> None:
        """After a lost connection: a Redis restarted (from an older dump, or
        a replica promoted) may hold an older state under the same epoch, so
        another server process means a full resync."""
        c = self.c
        epoch, seq = client.hmget(c.names.meta, ["epoch", "seq"])
        if server_id(client) != c.run_id:
            self.resync(full=True)
        elif epoch is None or epoch.decode() != c.epoch or int(seq or 0) < c.rseq:
            self.resync()

    # -- resync -----------------------------------------------------------------------

    def resync(self, full: bool = False) -> None:
        """Bring the mirror to Redis' state in one swap, decoding only the
        keys whose version changed (all of them when ``full``, or when Redis
        went back: another epoch, a lower sequence, another server process);
        announce what changed."""
        for _ in range(10):
            if self._resync_once(full):
                return
        self._resync_once(full, force=True)

    def _resync_once(self, full: bool, force: bool = False) -> bool:
        """One try; False when the mirror moved while the snapshot was read."""
        c = self.c
        mirror = c.mirror
        with self._sync_lock:
            client = c.client
            with mirror.lock:
                start_rseq, start_epoch = c.rseq, c.epoch
                # Structured values the mirror has need not be read again
                # while Redis has the same version (unless ``full``).
                have = (
                    [] if full else [(k, c.rver[k]) for k in c.layout if k in c.rver and k in mirror.latest]
                )
            latest = mirror.latest
            try:
                run_id = server_id(client)
                client.hsetnx(c.names.meta, "epoch", uuid.uuid4().hex)
                data, versions, epoch_b, seq_b, last_id, aux = self._read_state(client, have)
                epoch, seq = epoch_b.decode(), int(seq_b or 0)
                same = not full and epoch == start_epoch and seq >= start_rseq and run_id == c.run_id
                if have and not same:  # every value is decoded after all: read them all
                    data, versions, epoch_b, seq_b, last_id, aux = self._read_state(client, [])
                    epoch, seq = epoch_b.decode(), int(seq_b or 0)
            except NET_ERRORS as exc:
                raise ServerStateConnectionError(
                    None, f"server_state could not read the state from Redis at {redact(c.url)} ({exc})."
                ) from exc
            first = start_epoch is None
            known = c.rver
            rver: dict[str, int] = {}
            layout: dict[str, bytes] = {}
            writes: dict[str, Any] = {}
            unreadable: set[str] = set()
            for field, version_b in versions.items():
                key, version = field.decode(), int(version_b)
                payload = data.get(field)
                if payload is None:
                    continue
                rver[key] = version
                structured = is_header(payload)
                if structured:
                    layout[key] = payload
                if same and known.get(key) == version and key in latest:
                    continue
                try:
                    if structured:
                        items = aux.get(field)
                        if items is None:  # (a version the mirror had: read above unless same)
                            raise ServerStateError(f"server_state: the items of {key!r} were not read")
                        value = build_value(key, payload, decode_items(key, b"".join(items)))
                    else:
                        value = c.codec.decode(key, payload)
                except ServerStateError:
                    _LOG.exception(
                        "server_state: the value of %r in Redis cannot be read; the key is absent here", key
                    )
                    unreadable.add(key)
                    continue
                entry = latest.get(key)
                if entry is not None and unchanged(entry[0], value):
                    continue  # the same value under a new epoch: nothing to rerun for
                writes[key] = value
            tokens = tokens_of(writes)
            with mirror.lock:
                if not force and (c.rseq != start_rseq or c.epoch != start_epoch):
                    # Already past this snapshot: done; else the diff is stale: read again.
                    return same and c.epoch == epoch and c.rseq >= seq
                deletes = [k for k in latest if k not in rver or k in unreadable]
                changes = (
                    mirror.apply(writes, deletes, tokens, "resync from Redis") if writes or deletes else ()
                )
                c.rver, c.rseq, c.epoch, c.run_id = rver, seq, epoch, run_id
                c.layout = {k: h for k, h in layout.items() if k not in unreadable}
                c.last_id = last_id or b"0-0"
                c.sync_gen += 1
                c.resyncs += 1
                c.caught_up.notify_all()
        if changes and not first:
            self._announce(changes, LOCAL)  # (the first load changes nothing anybody saw)
        return True

    def _read_state(
        self, client: Any, have: list[tuple[str, int]]
    ) -> tuple[
        dict[bytes, bytes], dict[bytes, bytes], bytes, bytes | None, bytes | None, dict[bytes, list[bytes]]
    ]:
        """Redis' state in one consistent read: data and versions, epoch,
        seq, the last stream id, and the items of each structured value (but
        those of ``have`` while Redis has the same version).

        Optimistic first: ``WATCH`` the meta hash (every commit bumps its
        seq), read the data and version hashes, then in one ``MULTI`` the rest
        and the items of the structured values the mirror lacks; ``EXEC``
        fails if a commit came between. The items are read by Redis' own
        commands, not through Lua (a script's reply of a million items leaves
        as much garbage in Redis' Lua heap, slowing the commit scripts after
        it). Under a stream of commits that keeps failing it, one script
        reads it all atomically."""
        names = self.c.names
        known = dict(have)
        for _ in range(WATCH_TRIES):
            with client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(names.meta)
                    data = pipe.hgetall(names.data)
                    versions = pipe.hgetall(names.ver)
                    # The structured values whose version the mirror lacks.
                    wanted = [
                        f
                        for f, p in data.items()
                        if is_header(p) and known.get(f.decode()) != int(versions.get(f, 0) or 0)
                    ]
                    pipe.multi()
                    pipe.hmget(names.meta, ["epoch", "seq"])
                    pipe.xrevrange(names.log, "+", "-", count=1)
                    for field in wanted:
                        if data[field][:1] == b"L":
                            pipe.lrange(names.list + field.decode(), 0, -1)
                        else:
                            pipe.hgetall(names.hash + field.decode())
                    (epoch_b, seq_b), last, *rest = pipe.execute()
                except redis.WatchError:
                    continue
            aux: dict[bytes, list[bytes]] = {}
            for field, items in zip(wanted, rest, strict=True):
                aux[field] = list(chain.from_iterable(items.items())) if isinstance(items, dict) else items
            return data, versions, epoch_b, seq_b, last[0][0] if last else None, aux
        args: list[Any] = [names.list, names.hash]
        for key, version in have:
            args += (key, version)
        reply = self._snapshot_script(
            keys=[names.data, names.ver, names.meta, names.log], args=args, client=client
        )
        data_flat, versions_flat, epoch_b, seq_b, last_id = reply[:5]
        aux_flat = reply[5] if len(reply) > 5 else []
        return (
            pairs(data_flat),
            pairs(versions_flat),
            epoch_b,
            seq_b,
            last_id,
            dict(zip(aux_flat[::2], aux_flat[1::2], strict=True)),
        )


def server_id(client: Any) -> str:
    """The Redis process' run id (a new one after every restart or
    failover); "" where INFO is not allowed."""
    try:
        return str(client.info("server").get("run_id", ""))
    except redis.ResponseError:
        return ""
