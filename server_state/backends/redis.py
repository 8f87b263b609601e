"""The Redis backend: several replicas, one state.

Each replica keeps a mirror of the state: the memory store's structures,
read exactly as the memory backend reads them (no Redis call on a read). All
writes go to Redis first, as one Lua script per commit:

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

One follower thread per replica reads the stream from its last id
(``XREAD BLOCK``), so a dropped connection loses nothing, and applies each
entry in one swap of the mirror, in sequence order; the mirror is always the
state after some commit. A sequence gap (the stream was trimmed past us), a
new epoch (Redis was wiped, or failed over to a replica that lacks writes) or
a sequence that went back triggers a full resync: one ``MULTI`` snapshot,
decoding only the keys whose version changed. Commits made elsewhere enter
the same announce path as local ones, with the rerun round and chain of the
writer (its ``Origin``).

Versions. Local versions are the mirror's own commit counter (every applied
commit or resync is one step), so they only grow, across resyncs and epochs.
The Redis version of each present key (the sequence of the commit that wrote
it) is kept beside the mirror; a commit expects those.

``server_state_lock[key]`` is a lease in Redis (``SET NX PX``, renewed while
held, released by compare-and-delete), re-entrant in-process through the
local lock it wraps. Taking it waits until the mirror has every commit made
before it, so a read under the lock sees the last holder's writes. Every
commit of a thread that holds leases carries their tokens: a holder whose
lease expired (a stalled process) gets ``ServerStateLeaseError`` and writes
nothing.

Big values travel as patches. A FrozenList or pvector of ``LAYOUT_MIN``
items or more is kept in Redis as a list (one encoded item per element), a
pmap as a hash (encoded key -> encoded value); the data hash holds a
two-byte header for them. A write of such a key whose new value keeps the
stored value's first items (by identity: an append, a change at the end), or
shares all but a few buckets of its map, sends only the new tail or the
changed entries (``_codec.seq_patch``/``map_patch``); the commit script
checks that Redis holds that layout and length (the key's version, which
every write checks, proves the content) and applies it with ``RPUSH``/
``LTRIM``/``HSET``/``HDEL``; each follower applies it to its mirror's
structure in O(patch · log n). Anything identity cannot prove, or a layout
Redis does not have, is sent whole: its items are staged first with plain
commands and renamed into place by the script. A resync reads them with
``WATCH`` + ``MULTI`` (one Lua script if commits keep interrupting it).

Only this module imports ``redis``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from itertools import chain
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .. import _locks
from .._errors import (
    ServerStateConnectionError,
    ServerStateDeadlockError,
    ServerStateError,
    ServerStateLeaseError,
    ServerStatePayloadError,
)
from .._store import MISSING, Change, MemoryStore, StoreState, _tokens_of
from .._values import unchanged
from . import DEFAULT_NAMESPACE, LOCAL, Origin, _redact
from ._codec import (
    LAYOUT_MIN,
    apply_map_patch,
    apply_seq_patch,
    build_value,
    decode_items,
    encode_items,
    is_header,
    layout_header,
    make_codec,
    map_items,
    map_patch,
    seq_patch,
)

__all__ = ["LeasedLock", "RedisStore"]

_LOG = logging.getLogger("server_state")

# How long a write keeps retrying while Redis cannot be reached.
WRITE_PATIENCE = 10.0
# How long a commit waits for the follower to bring the mirror up to a
# sequence before it resyncs itself.
CATCH_UP = 5.0
STREAM_MAXLEN = 100_000  # ~: Redis trims in whole nodes
TX_TTL = 300  # seconds a transaction id is remembered for replays
BLOCK_MS = 1000
WATCH_TRIES = 5  # optimistic reads of the state before one atomic script reads it
STAGE_CHUNK = 10_000  # items per command when staging a big value (an even number: map entries)
STAGE_TTL_MS = 300_000  # a staged value nobody committed is gone after this

# KEYS: data, ver, meta, log, tx, the fenced lease keys, the respected lease
#       keys, then the (list, hash, staging) keys of each write and each delete.
# ARGV: epoch, required seq ('' for none), maxlen, origin, txid, tx ttl,
#       n_expect, n_fence, n_respect, n_write, n_delete,
#       then (key, version; '0' for absent)*n_expect, token*n_fence,
#       one write after the other, key*n_delete. A write is its key, a kind
#       and what the kind needs:
#         v payload                     the whole value, in the data hash
#         L header n items              a sequence of n items, already pushed to
#                                       its staging list (renamed to its list);
#                                       items: all of them in one string, for
#                                       the stream
#         H header n items              a map, its n/2 entries already in its
#                                       staging hash (renamed to its hash)
#         A header base keep n item*n   a patch: the list (of base items) keeps
#                                       its first keep items, then the n items
#         P header base n (field value)*n/2 m field*m
#                                       a patch: the hash (of base entries)
#                                       gets the n/2 entries, loses the m fields
# Returns {1, seq} committed (or replayed), {2, seq} checked with nothing to
# write, {0, seq} a version conflict, {-1, i} fenced lease i lost, {-2, i}
# lease i held by another, {-3, seq} another epoch, {-4, seq} seq moved,
# {-5, i} write i is a patch of a layout Redis does not have (send it whole),
# {-6, i} write i's staging key does not hold its items (stage them again).
# The stream entry's body carries each write as its kind and length-prefixed
# parts (s key payload | L/H key header field | A key header base,keep items |
# P key header base entries fields | d key); the items of L/H are the entry's
# field named by the body (a field of its own: no copy into the body). Big
# values are staged outside the script and renamed into place by it: a
# script with a million arguments leaves hundreds of MB in Redis' Lua heap.
_COMMIT = """
local done = redis.call('GET', KEYS[5])
if done then return {1, tonumber(done)} end
local nexp, nfence = tonumber(ARGV[7]), tonumber(ARGV[8])
local nresp, nwrite, ndel = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local a = 12 + 2 * nexp
for i = 1, nfence do
  if redis.call('GET', KEYS[5 + i]) ~= ARGV[a + i - 1] then return {-1, i} end
end
local meta = redis.call('HMGET', KEYS[3], 'epoch', 'seq')
local seq = tonumber(meta[2]) or 0
if meta[1] ~= ARGV[1] then return {-3, seq} end
if ARGV[2] ~= '' and seq ~= tonumber(ARGV[2]) then return {-4, seq} end
a = 12
for i = 1, nexp do
  local have = redis.call('HGET', KEYS[2], ARGV[a])
  if ARGV[a + 1] == '0' then
    if have then return {0, seq} end
  elseif have ~= ARGV[a + 1] then
    return {0, seq}
  end
  a = a + 2
end
for i = 1, nresp do
  if redis.call('EXISTS', KEYS[5 + nfence + i]) == 1 then return {-2, i} end
end
if nwrite + ndel == 0 then return {2, seq} end
local aux = 5 + nfence + nresp
a = 12 + 2 * nexp + nfence
local ops = {}
for i = 1, nwrite do
  local op = {key = ARGV[a], kind = ARGV[a + 1], head = ARGV[a + 2],
              l = KEYS[aux + 3 * i - 2], h = KEYS[aux + 3 * i - 1], s = KEYS[aux + 3 * i]}
  local kind = op.kind
  if kind == 'v' then
    a = a + 3
  elseif kind == 'L' or kind == 'H' then
    op.n = tonumber(ARGV[a + 3]); op.blob = a + 4; a = a + 5
    local staged = kind == 'L' and redis.call('LLEN', op.s) or 2 * redis.call('HLEN', op.s)
    if staged ~= op.n then return {-6, i} end
  elseif kind == 'A' then
    op.base, op.keep = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
    op.n = tonumber(ARGV[a + 5]); op.first = a + 6; a = op.first + op.n
    if redis.call('HGET', KEYS[1], op.key) ~= op.head or redis.call('LLEN', op.l) ~= op.base then
      return {-5, i}
    end
  else -- 'P'
    op.base = tonumber(ARGV[a + 3])
    op.n = tonumber(ARGV[a + 4]); op.first = a + 5; a = op.first + op.n
    op.m = tonumber(ARGV[a]); op.dfirst = a + 1; a = op.dfirst + op.m
    if redis.call('HGET', KEYS[1], op.key) ~= op.head or redis.call('HLEN', op.h) ~= op.base then
      return {-5, i}
    end
  end
  ops[i] = op
end
local function each(cmd, key, first, n)
  local stop = first + n - 1
  while first <= stop do
    local last = math.min(first + 3999, stop)
    redis.call(cmd, key, unpack(ARGV, first, last))
    first = last + 1
  end
end
local function part(s) return #s .. ':' .. s end
local function items(op) return part(table.concat(ARGV, '', op.first, op.first + op.n - 1)) end
seq = redis.call('HINCRBY', KEYS[3], 'seq', 1)
local body = {}
local extra = {}
for i = 1, nwrite do
  local op = ops[i]
  local key, kind = op.key, op.kind
  if kind == 'A' then
    if op.keep == 0 then
      redis.call('DEL', op.l)
    elseif op.keep < op.base then
      redis.call('LTRIM', op.l, 0, op.keep - 1)
    end
    each('RPUSH', op.l, op.first, op.n)
    body[#body + 1] = 'A' .. part(key) .. part(op.head) .. part(op.base .. ',' .. op.keep) .. items(op)
  elseif kind == 'P' then
    each('HDEL', op.h, op.dfirst, op.m)
    each('HSET', op.h, op.first, op.n)
    body[#body + 1] = 'P' .. part(key) .. part(op.head) .. part(tostring(op.base)) .. items(op)
      .. part(table.concat(ARGV, '', op.dfirst, op.dfirst + op.m - 1))
  else
    redis.call('HSET', KEYS[1], key, op.head)
    redis.call('DEL', op.l, op.h)
    if kind == 'v' then
      body[#body + 1] = 's' .. part(key) .. part(op.head)
    else
      redis.call('RENAME', op.s, kind == 'L' and op.l or op.h)
      local field = 'x' .. i
      body[#body + 1] = kind .. part(key) .. part(op.head) .. part(field)
      extra[#extra + 1] = field
      extra[#extra + 1] = ARGV[op.blob]
    end
  end
  redis.call('HSET', KEYS[2], key, seq)
end
for i = 1, ndel do
  local key = ARGV[a]
  redis.call('HDEL', KEYS[1], key)
  redis.call('HDEL', KEYS[2], key)
  redis.call('DEL', KEYS[aux + 3 * (nwrite + i) - 2], KEYS[aux + 3 * (nwrite + i) - 1])
  body[#body + 1] = 'd' .. part(key)
  a = a + 1
end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*',
  'seq', seq, 'e', ARGV[1], 'tx', ARGV[5], 'o', ARGV[4], 'b', table.concat(body), unpack(extra))
redis.call('SET', KEYS[5], seq, 'EX', ARGV[6])
return {1, seq}
"""

# The state in one atomic read, for a resync.
# KEYS: data, ver, meta, log. ARGV: the list key prefix, the hash key prefix,
# then (key, version)* of structured values the mirror has: their items are
# not read again while Redis has that version.
# Returns {data (flat field, value...), ver (flat), epoch, seq, last stream
# id or nil, {key, items (flat)}* for each structured value read}.
_SNAPSHOT = """
local known = {}
for i = 3, #ARGV, 2 do known[ARGV[i]] = ARGV[i + 1] end
local data = redis.call('HGETALL', KEYS[1])
local ver = redis.call('HGETALL', KEYS[2])
local vers = {}
for i = 1, #ver, 2 do vers[ver[i]] = ver[i + 1] end
local aux = {}
for i = 1, #data, 2 do
  local key, p = data[i], data[i + 1]
  if #p == 2 and known[key] ~= vers[key] then
    local kind = string.sub(p, 1, 1)
    if kind == 'L' then
      aux[#aux + 1] = key
      aux[#aux + 1] = redis.call('LRANGE', ARGV[1] .. key, 0, -1)
    elseif kind == 'H' then
      aux[#aux + 1] = key
      aux[#aux + 1] = redis.call('HGETALL', ARGV[2] .. key)
    end
  end
end
local meta = redis.call('HMGET', KEYS[3], 'epoch', 'seq')
local last = redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', 1)
local id = false
if last[1] then id = last[1][1] end
return {data, ver, meta[1], meta[2], id, aux}
"""

# KEYS: lease, meta. ARGV: token, ttl ms. {1, seq}: ours now; {0, pttl}: held.
_LEASE_TAKE = """
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
elseif cur then
  return {0, redis.call('PTTL', KEYS[1])}
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return {1, tonumber(redis.call('HGET', KEYS[2], 'seq')) or 0}
"""
_LEASE_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_LEASE_DROP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_NET_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)


class _Pending:
    """A commit of this replica on its way into the mirror."""

    __slots__ = ("changes", "commit", "epoch")

    def __init__(self, epoch: str | None, commit: tuple[Any, ...]) -> None:
        self.changes: tuple[Change, ...] | None = None
        self.epoch = epoch  # of the data it was committed to
        # What _apply_redis takes for it (writes, deletes, tokens, who,
        # layouts): the follower applies these very objects when the commit
        # comes back in the stream first, rather than decoding it.
        self.commit = commit


class RedisStore(MemoryStore):
    """A mirror of a state kept in Redis, shared by every replica that uses
    the same URL and namespace."""

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
        super().__init__()
        self.replica = replica or f"{socket.gethostname()}:{os.getpid()}"
        self.url = url
        self.namespace = namespace or DEFAULT_NAMESPACE
        self.lease_ttl = float(lease_ttl) if lease_ttl is not None else 10.0
        if self.lease_ttl <= 0.1:
            raise ServerStateError(f"server_state: lease_ttl must be more than 0.1 s, got {lease_ttl!r}.")
        self.serializer = serializer or "tagged"
        self._codec = make_codec(self.serializer, signing_key)
        self._signing_key = signing_key
        self._maxlen = str(int(stream_maxlen))
        self._block_ms = int(block_ms)
        try:
            if clients is not None:
                self._client, self._follow_client = clients
            else:
                self._client, self._follow_client = self._connect(url)
        except ValueError as exc:
            raise ServerStateError(
                f"SERVER_STATE_URL={_redact(url)} is not a Redis URL that redis-py accepts: {exc}"
            ) from None
        tag = "{ss:" + self.namespace + "}"
        self._k_data, self._k_ver, self._k_meta = f"{tag}:data", f"{tag}:ver", f"{tag}:meta"
        self._k_log, self._k_tx, self._k_lease = f"{tag}:log", f"{tag}:tx:", f"{tag}:lease:"
        self._k_list, self._k_hash = f"{tag}:l:", f"{tag}:h:"  # + key: a structured value's items
        self._k_stage = f"{tag}:stage:"  # + txid:key: a big value's items on their way in
        self._commit_script = self._client.register_script(_COMMIT)
        self._snapshot_script = self._client.register_script(_SNAPSHOT)
        self._patches = self._codec.name == "tagged"  # pickles stay whole (one signature each)
        self._take_script = self._client.register_script(_LEASE_TAKE)
        self._renew_script = self._client.register_script(_LEASE_RENEW)
        self._drop_script = self._client.register_script(_LEASE_DROP)

        self._rver: dict[str, int] = {}  # present key -> Redis version
        self._layout: dict[str, bytes] = {}  # key kept item by item in Redis -> its header
        self.patched = 0  # writes sent as patches (for tests and benchmarks)
        self._rseq = 0  # the Redis sequence the mirror is at
        self._epoch: str | None = None
        self._run_id = ""  # of the Redis process the mirror was synced from
        self._last_id: bytes = b"0-0"
        self._sync_gen = 0  # resyncs so far (the follower restarts from _last_id after one)
        self._caught_up = threading.Condition(self._root_lock)
        self._own: dict[str, _Pending] = {}  # txid -> this replica's commit in flight
        self._sync_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._started = False
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._on_remote: Callable[[tuple[Change, ...], Origin], None] | None = None
        self._origin: Callable[[], Origin] = lambda: LOCAL
        self._local = threading.local()  # .leases: {lease key: token}; .respect: depth
        self._leases: dict[str, str] = {}  # every lease held here, for the renewer
        self._leases_lock = threading.Lock()
        self.resyncs = 0

    @staticmethod
    def _connect(url: str) -> tuple[Any, Any]:
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

    def attach(
        self,
        on_remote: Callable[..., None],
        origin: Callable[[], Any],
        writer: Callable[[], str] | None = None,
    ) -> None:
        super().attach(on_remote, origin, writer)
        self._on_remote, self._origin = on_remote, origin

    @property
    def lock_factory(self) -> Callable[[str, threading.RLock], LeasedLock]:  # type: ignore[override]
        return lambda key, local: LeasedLock(self, key, local)

    @property
    def used(self) -> bool:
        return self._started

    def close(self) -> None:
        """Stop the follower and the lease renewer and close the connections."""
        self._closing.set()
        for client in (self._follow_client, self._client):
            with contextlib.suppress(Exception):  # closing anyway
                client.connection_pool.disconnect()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=self._block_ms / 1000 + 6)

    def __repr__(self) -> str:
        return f"<RedisStore {_redact(self.url)} namespace={self.namespace!r}>"

    # -- start: on first use ------------------------------------------------------

    def _ensure(self) -> None:
        if not self._started:
            self._start()

    def _start(self) -> None:
        with self._start_lock:
            if self._started:
                return
            if self._closing.is_set():
                raise ServerStateError(f"server_state: {self!r} was closed.")
            try:
                self._client.ping()
            except _NET_ERRORS as exc:
                raise ServerStateConnectionError(
                    None,
                    f"server_state could not reach Redis at {_redact(self.url)} ({exc}); nothing "
                    "was read or written. Check that Redis runs there and that SERVER_STATE_URL is right.",
                ) from exc
            self._check_policy()
            self._resync()
            follower = threading.Thread(
                target=self._follow, name=f"server_state-follower-{self.namespace}", daemon=True
            )
            renewer = threading.Thread(
                target=self._renew, name=f"server_state-leases-{self.namespace}", daemon=True
            )
            self._threads = [follower, renewer]
            follower.start()
            renewer.start()
            # From now on reads go straight to the mirror.
            self.entry = super().entry  # type: ignore[method-assign]
            self._started = True

    def _check_policy(self) -> None:
        try:
            policy = self._client.config_get("maxmemory-policy").get("maxmemory-policy")
        except redis.ResponseError:  # CONFIG is often forbidden on managed Redis
            _LOG.info("server_state: could not check Redis' maxmemory-policy (CONFIG is not allowed).")
            return
        if isinstance(policy, bytes):
            policy = policy.decode()
        if policy and policy != "noeviction":
            warnings.warn(
                f"server_state: Redis at {_redact(self.url)} has maxmemory-policy={policy}: when it is "
                "full it may evict keys of the shared state. Set maxmemory-policy noeviction.",
                RuntimeWarning,
                stacklevel=3,
            )

    # -- reads: the mirror, once started ---------------------------------------------

    def entry(self, key: str) -> tuple[Any, int]:
        self._ensure()
        return super().entry(key)

    def keys(self) -> list[str]:
        self._ensure()
        return super().keys()

    def __len__(self) -> int:
        self._ensure()
        return super().__len__()

    @property
    def state(self) -> StoreState:
        self._ensure()
        return MemoryStore.state.fget(self)  # type: ignore[attr-defined,no-any-return]

    def ordered_keys(self, state: StoreState) -> list[str]:
        self._ensure()
        return super().ordered_keys(state)

    # -- writes ----------------------------------------------------------------------

    # A transaction's conflict with another replica is no bug of fn: retry.
    shared = True

    def update(
        self, key: str, fn: Callable[[Any], Any], default: Any = MISSING
    ) -> tuple[Any, int, Change | None]:
        with self._respecting():
            while True:
                seen = self._rseq
                try:
                    return super().update(key, fn, default)
                except ServerStateError:
                    raise
                except Exception:  # from fn
                    if not self._lagged(seen):
                        raise

    def transact(self, fn: Any, guard: Any = None) -> Any:
        with self._respecting():
            return super().transact(fn) if guard is None else super().transact(fn, guard)

    def _transact_once(self, fn: Any, guard: Any, *, wait: bool) -> Any:
        seen = self._rseq
        try:
            return super()._transact_once(fn, guard, wait=wait)
        except ServerStateError:
            raise
        except Exception:  # from fn
            if self._lagged(seen):
                return None, []  # a conflict: go again on the newer state
            raise

    def _lagged(self, seen: int) -> bool:
        """After ``fn`` raised: whether the mirror it read (at Redis sequence
        ``seen``) was behind Redis; then the mirror catches up and the caller
        runs ``fn`` again on the newer state, as it would after a conflict
        (``fn`` raising on a value another replica already replaced is no
        error of the app's)."""
        try:
            seq = int(self._client.hget(self._k_meta, "seq") or 0)
        except _NET_ERRORS:
            return False
        if seq <= seen:
            return False
        self._catch_up(seq)
        return True

    def _respecting(self) -> _Respecting:
        return _Respecting(self._local)

    def _confirm(self, key: str, version: int) -> bool:
        """An equal write changes nothing only if Redis agrees the mirror's
        value is the newest: else a stale mirror would drop a write."""
        self._ensure()
        with self._root_lock:
            if self.entry(key)[1] != version:
                return False
            expect = {key: self._rver.get(key, 0)}
            epoch, seen = self._epoch, self._rseq
        reply = self._run(key, expect, "", {}, (), epoch)
        return self._judge(reply, key, seen) is not None

    def _commit_one(self, key: str, expected: int, value: Any, token: Any) -> Change | None:
        tokens = {} if token is None else {key: token}
        changes = self._commit({key: expected}, {key: value}, (), tokens=tokens)
        return None if changes is None else changes[0]

    def _commit(
        self,
        expected: dict[str, int] | None,
        writes: dict[str, Any],
        deletes: tuple[str, ...],
        *,
        since: int = 0,
        conflicts: AbstractSet[str] | None = None,
        tokens: dict[str, Any] | None = None,
    ) -> tuple[Change, ...] | None:
        self._ensure()
        first = next(iter(writes), deletes[0] if deletes else None)
        # Which written keys the commit checks in Redis at the version this
        # mirror has (all of them when it requires the whole sequence): only
        # those may travel as patches of what the mirror holds.
        checked: AbstractSet[str] | None = (
            expected.keys() if expected is not None else conflicts if conflicts is not None else None
        )
        if tokens is None:
            tokens = _tokens_of(writes)
        patches = self._patches
        while True:
            # Encoding first, outside every lock: a value Redis cannot take
            # fails here, before anything is sent.
            ops, layouts, bases, stages = self._encode_writes(writes, checked if patches else set())
            with self._root_lock:
                if self._exclusive is not None:
                    self._wait_exclusive()
                if not self._still(expected, since, conflicts):
                    return None
                latest, layout = self._latest, self._layout
                if any(latest.get(k) is not e or layout.get(k) != layouts[k] for k, e in bases.items()):
                    return None  # the mirror moved under the patch: the caller goes again
                # What Redis must still have: the versions this mirror has of
                # the keys the commit depends on (all keys: the sequence).
                depends = expected if expected is not None else conflicts
                require = "" if depends is not None else str(self._rseq)
                rver = self._rver
                expect = {key: rver.get(key, 0) for key in depends or ()}
                epoch, seen = self._epoch, self._rseq
            txid = uuid.uuid4().hex
            who = f"{self.replica} · {self._writer()}"
            pending = self._own[txid] = _Pending(epoch, (writes, deletes, tokens, who, layouts))
            try:
                reply = self._run(first, expect, require, ops, deletes, epoch, txid, who, stages)
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
                self._own.pop(txid, None)

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
        codec = self._codec
        for key, value in writes.items():
            header = layout_header(value) if self._patches else None
            if header is None:
                ops[key], layouts[key] = ["v", codec.encode(key, value)], None
                continue
            layouts[key] = header
            if (checked is None or key in checked) and self._layout.get(key) == header:
                entry = self._latest.get(key)
                # (The very object again is a touch: something inside it
                # changed in place, which identity cannot see.)
                op = (
                    _patch_op(key, header, entry[0], value)
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
    ) -> list[Any]:
        """Send one commit (or, with nothing to write, one check); retries
        on connection errors with the same transaction id until
        ``WRITE_PATIENCE`` is spent."""
        leases: dict[str, str] = getattr(self._local, "leases", None) or {}
        deletes = list(deletes)
        respect: list[str] = []
        if getattr(self._local, "respect", 0):
            respect = [self._k_lease + k for k in (*ops, *deletes) if self._k_lease + k not in leases]
        args: list[Any] = [
            epoch or "",
            require,
            self._maxlen,
            _origin_text(self._origin(), who),
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
        stage = f"{self._k_stage}{txid}:"
        for k, op in ops.items():
            args.append(k)
            args += op
            aux += (self._k_list + k, self._k_hash + k, stage + k)
        args += deletes
        for k in deletes:
            aux += (self._k_list + k, self._k_hash + k, stage + k)
        staged = False
        keys = [
            self._k_data,
            self._k_ver,
            self._k_meta,
            self._k_log,
            self._k_tx + txid,
            *leases,
            *respect,
            *aux,
        ]
        deadline = time.monotonic() + WRITE_PATIENCE
        pause = 0.005
        restaged = 0
        while True:
            try:
                if stages and not staged:
                    self._stage(stage, ops, stages)
                    staged = True
                reply = self._commit_script(keys=keys, args=args, client=self._client)
            except _NET_ERRORS as exc:
                if time.monotonic() + pause > deadline or self._closing.is_set():
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
                        f"server_state could not write {key!r} to Redis at {_redact(self.url)} for "
                        f"{WRITE_PATIENCE:.0f} s ({exc}): {written}. Reads still show the last state seen.",
                    ) from exc
                self._closing.wait(pause)
                pause = min(pause * 2, 0.5)
                continue
            except redis.ResponseError as exc:
                raise ServerStateError(
                    f"server_state: Redis refused the commit of {key!r} ({exc}); nothing was written."
                ) from exc
            reply[0] = int(reply[0])
            if reply[0] == -2:
                self._wait_lease_free(respect[int(reply[1]) - 1], list(leases))
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
                with contextlib.suppress(*_NET_ERRORS):
                    self._client.delete(*(stage + k for k in stages))  # (else they expire)
            return [int(x) for x in reply]

    def _stage(self, stage: str, ops: dict[str, list[Any]], stages: dict[str, list[bytes]]) -> None:
        """Push the items of the values sent whole item by item to their
        staging keys (plain commands, not the script: see ``_COMMIT``); the
        commit script renames them into place."""
        pipe = self._client.pipeline(transaction=False)
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
                self._resync(full=True)
            else:
                self._catch_up(reply[1])
            return None
        if status == -3:
            self._resync()
            return None
        lost = list(getattr(self._local, "leases", {}))[reply[1] - 1][len(self._k_lease) :]
        raise ServerStateLeaseError(
            key or lost,
            f"server_state: the lock of {lost!r} held by this thread expired (or was taken over) before "
            f"the write of {key!r}: nothing was written. A `with server_state_lock[...]:` block "
            f"must not stall for longer than the lease ({self.lease_ttl:g} s, SERVER_STATE_LEASE_TTL).",
        )

    def _landed(
        self,
        pending: _Pending,
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
        with self._root_lock:
            while True:
                if pending.changes is not None:
                    return pending.changes
                if self._epoch != pending.epoch:
                    break
                if self._rseq == seq - 1:
                    return self._apply_redis(writes, deletes, tokens, seq, who=who, layouts=layouts)
                if self._rseq >= seq:  # a resync took it in (and announced it)
                    return self._taken(writes, deletes)
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._caught_up.wait(left)
        if self._epoch == pending.epoch:
            self._resync()
        with self._root_lock:
            if pending.changes is not None:
                return pending.changes
            if self._epoch == pending.epoch and self._rseq >= seq:
                return self._taken(writes, deletes)
        key = next(iter(writes), deletes[0] if deletes else None)
        raise ServerStateConnectionError(
            key,
            f"server_state: the write of {key!r} reached Redis at {_redact(self.url)}, which then lost "
            "its data (it restarted empty or failed over to a copy without the write): the write is "
            "lost with it. This replica now shows what Redis has.",
        )

    def _taken(self, writes: dict[str, Any], deletes: tuple[str, ...]) -> tuple[Change, ...]:
        """Under the root lock: the changes of our commit that a resync took
        into the mirror (their old values are no longer known)."""
        entry = self.entry
        return (
            *(Change(k, MISSING, v, entry(k)[1]) for k, v in writes.items()),
            *(Change(k, MISSING, MISSING, entry(k)[1]) for k in deletes),
        )

    def _apply_redis(
        self,
        writes: dict[str, Any],
        deletes: Iterable[str],
        tokens: dict[str, Any],
        seq: int,
        unreadable: Iterable[str] = (),
        who: str = "",
        layouts: dict[str, bytes | None] | None = None,
    ) -> tuple[Change, ...]:
        """Under the root lock: the commit at Redis sequence ``seq`` (the
        next one) into the mirror. ``unreadable`` keys were written with a
        payload this replica refuses to decode: absent here, but their Redis
        version is known, so a write of them here can replace them.
        ``layouts``: how Redis keeps each written value (None: whole)."""
        rver, layout = self._rver, self._layout
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
        changes = self._apply(
            writes, (*deletes, *unreadable), tokens, self._seq + 1, who or "another replica"
        )
        self._rseq = seq
        self._caught_up.notify_all()
        return changes

    def _catch_up(self, seq: int) -> None:
        """Wait until the mirror is at Redis sequence ``seq`` (resync if the
        follower does not bring it there in time)."""
        deadline = time.monotonic() + CATCH_UP
        with self._root_lock:
            while self._rseq < seq:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._caught_up.wait(left)
            else:
                return
        self._resync()

    # -- the follower ---------------------------------------------------------------

    def _follow(self) -> None:
        client = self._follow_client
        # The XREADs go on a connection of the follower's own, sent and read
        # directly: every commit of this replica comes back here too, and
        # redis-py's command layer (pool, retries, response callbacks) would
        # hold the GIL the committing thread is waiting for on each of them.
        conn = None
        last_id, gen = self._last_id, self._sync_gen
        pause = 0.01
        suspect = 0
        while not self._closing.is_set():
            try:
                if self._sync_gen != gen:
                    last_id, gen = self._last_id, self._sync_gen
                if conn is None:
                    conn = client.connection_pool.get_connection()  # connects: errors as below
                try:
                    conn.send_command(
                        "XREAD", "COUNT", 1000, "BLOCK", self._block_ms, "STREAMS", self._k_log, last_id
                    )
                    reply = conn.read_response()
                except BaseException:
                    conn.disconnect()  # the next send reconnects
                    raise
                pause = 0.01
                if not reply:
                    suspect = self._idle_check(client, suspect)
                    continue
                for entry_id, fields in _entries(reply):
                    if not self._follow_entry(fields):
                        break  # resynced: restart from its position
                    last_id = entry_id
            except _NET_ERRORS as exc:
                if self._closing.is_set():
                    return
                _LOG.debug("server_state follower: %s; reconnecting in %.2f s", exc, pause)
                self._closing.wait(pause)
                pause = min(pause * 2, 1.0)
                with contextlib.suppress(*_NET_ERRORS):
                    self._check_epoch(client)
            except Exception:
                if self._closing.is_set():
                    return
                _LOG.exception("server_state follower failed; resyncing")
                self._closing.wait(pause)
                pause = min(pause * 2, 1.0)
                with contextlib.suppress(Exception):
                    self._resync()

    def _follow_entry(self, fields: dict[bytes, bytes]) -> bool:
        """Apply one stream entry; False after a resync it called for."""
        seq = int(fields[b"seq"])
        epoch = fields[b"e"].decode()
        if epoch != self._epoch:
            self._resync()
            return False
        if seq <= self._rseq:
            return True  # ours, applied when it landed, or older than a resync
        if seq != self._rseq + 1:
            self._resync()  # a gap: the stream was trimmed past us
            return False
        txid = fields[b"tx"].decode()
        pending = self._own.get(txid)
        if pending is not None:  # this replica's own commit, not applied yet
            own_writes, own_deletes, own_tokens, own_who, own_layouts = pending.commit
            with self._root_lock:
                if seq != self._rseq + 1 or epoch != self._epoch:
                    return seq <= self._rseq
                if pending.changes is None:
                    pending.changes = self._apply_redis(
                        own_writes, own_deletes, own_tokens, seq, who=own_who, layouts=own_layouts
                    )
                return True
        writes, deletes = _parse_body(fields[b"b"])
        decoded: dict[str, Any] = {}
        layouts: dict[str, bytes | None] = {}
        patches: list[tuple[str, str, bytes, list[bytes], list[Any]]] = []
        unreadable: list[str] = []
        for kind, key, header, parts in writes:
            try:
                if kind == "s":
                    decoded[key], layouts[key] = self._codec.decode(key, header), None
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
        origin, who = _origin_of(fields.get(b"o", b""))
        with self._root_lock:
            if seq != self._rseq + 1 or epoch != self._epoch:
                return seq <= self._rseq
            fit = not patches or self._patch_mirror(patches, decoded)
            if fit:
                changes = self._apply_redis(
                    decoded, deletes, _tokens_of(decoded), seq, unreadable, who, layouts
                )
                pending = self._own.get(txid)
                if pending is not None:
                    pending.changes = changes
                    return True
        if not fit:
            # The mirror does not hold what the patch was made against (a
            # value it could not read): take Redis' state instead.
            self._resync()
            return False
        if changes and self._on_remote is not None:
            self._announce(changes, origin)
        return True

    def _patch_mirror(
        self, patches: list[tuple[str, str, bytes, list[bytes], list[Any]]], decoded: dict[str, Any]
    ) -> bool:
        """Under the root lock, with the mirror at the commit before the
        patches' one: the new values into ``decoded``; False when a patch's
        base is not the value here (absent, another layout or length)."""
        latest, layout = self._latest, self._layout
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
            self._on_remote(changes, origin)  # type: ignore[misc]
        except Exception:
            _LOG.exception("server_state: announcing a commit from another replica failed")

    def _idle_check(self, client: Any, suspect: int) -> int:
        """Nothing came for a while: is the mirror still on Redis' track?"""
        epoch, seq = client.hmget(self._k_meta, ["epoch", "seq"])
        seq = int(seq or 0)
        if epoch is None or epoch.decode() != self._epoch or seq < self._rseq:
            self._resync()
            return 0
        if seq > self._rseq:
            if suspect and seq >= suspect:
                self._resync()  # the stream does not have what meta says was written
                return 0
            return seq
        return 0

    def _check_epoch(self, client: Any) -> None:
        """After a lost connection: a Redis restarted (from an older dump, or
        a replica promoted) may hold an older state under the same epoch, so
        another server process means a full resync."""
        epoch, seq = client.hmget(self._k_meta, ["epoch", "seq"])
        if _server_id(client) != self._run_id:
            self._resync(full=True)
        elif epoch is None or epoch.decode() != self._epoch or int(seq or 0) < self._rseq:
            self._resync()

    # -- resync -----------------------------------------------------------------------

    def _resync(self, full: bool = False) -> None:
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
        with self._sync_lock:
            client = self._client
            with self._root_lock:
                start_rseq, start_epoch = self._rseq, self._epoch
                # Structured values the mirror has need not be read again
                # while Redis has the same version (unless ``full``).
                have = (
                    []
                    if full
                    else [(k, self._rver[k]) for k in self._layout if k in self._rver and k in self._latest]
                )
            latest = self._latest
            try:
                run_id = _server_id(client)
                client.hsetnx(self._k_meta, "epoch", uuid.uuid4().hex)
                data, versions, epoch_b, seq_b, last_id, aux = self._read_state(client, have)
                epoch, seq = epoch_b.decode(), int(seq_b or 0)
                same = not full and epoch == start_epoch and seq >= start_rseq and run_id == self._run_id
                if have and not same:  # every value is decoded after all: read them all
                    data, versions, epoch_b, seq_b, last_id, aux = self._read_state(client, [])
                    epoch, seq = epoch_b.decode(), int(seq_b or 0)
            except _NET_ERRORS as exc:
                raise ServerStateConnectionError(
                    None, f"server_state could not read the state from Redis at {_redact(self.url)} ({exc})."
                ) from exc
            first = start_epoch is None
            known = self._rver
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
                        value = self._codec.decode(key, payload)
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
            tokens = _tokens_of(writes)
            with self._root_lock:
                if not force and (self._rseq != start_rseq or self._epoch != start_epoch):
                    # Already past this snapshot: done; else the diff is stale: read again.
                    return same and self._epoch == epoch and self._rseq >= seq
                deletes = [k for k in self._latest if k not in rver or k in unreadable]
                changes = (
                    self._apply(writes, deletes, tokens, self._seq + 1, "resync from Redis")
                    if writes or deletes
                    else ()
                )
                self._rver, self._rseq, self._epoch, self._run_id = rver, seq, epoch, run_id
                self._layout = {k: h for k, h in layout.items() if k not in unreadable}
                self._last_id = last_id or b"0-0"
                self._sync_gen += 1
                self.resyncs += 1
                self._caught_up.notify_all()
        if changes and not first and self._on_remote is not None:
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
        fails if a commit came between. The items are read by Redis' own commands, not through Lua
        (a script's reply of a million items leaves as much garbage in Redis'
        Lua heap, slowing the commit scripts after it). Under a stream of
        commits that keeps failing it, one script reads it all atomically."""
        known = dict(have)
        for _ in range(WATCH_TRIES):
            with client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(self._k_meta)
                    data = pipe.hgetall(self._k_data)
                    versions = pipe.hgetall(self._k_ver)
                    # The structured values whose version the mirror lacks.
                    wanted = [
                        f
                        for f, p in data.items()
                        if is_header(p) and known.get(f.decode()) != int(versions.get(f, 0) or 0)
                    ]
                    pipe.multi()
                    pipe.hmget(self._k_meta, ["epoch", "seq"])
                    pipe.xrevrange(self._k_log, "+", "-", count=1)
                    for field in wanted:
                        if data[field][:1] == b"L":
                            pipe.lrange(self._k_list + field.decode(), 0, -1)
                        else:
                            pipe.hgetall(self._k_hash + field.decode())
                    (epoch_b, seq_b), last, *rest = pipe.execute()
                except redis.WatchError:
                    continue
            aux: dict[bytes, list[bytes]] = {}
            for field, items in zip(wanted, rest, strict=True):
                aux[field] = list(chain.from_iterable(items.items())) if isinstance(items, dict) else items
            return data, versions, epoch_b, seq_b, last[0][0] if last else None, aux
        args: list[Any] = [self._k_list, self._k_hash]
        for key, version in have:
            args += (key, version)
        reply = self._snapshot_script(
            keys=[self._k_data, self._k_ver, self._k_meta, self._k_log], args=args, client=client
        )
        data_flat, versions_flat, epoch_b, seq_b, last_id = reply[:5]
        aux_flat = reply[5] if len(reply) > 5 else []
        return (
            _pairs(data_flat),
            _pairs(versions_flat),
            epoch_b,
            seq_b,
            last_id,
            dict(zip(aux_flat[::2], aux_flat[1::2], strict=True)),
        )

    # -- leases -------------------------------------------------------------------------

    def _lease_take(self, key: str, blocking: bool, deadline: float | None) -> str | None:
        """Take ``key``'s lease; its token, or None when not blocking (or
        past ``deadline``) and another holds it."""
        self._ensure()
        name = self._k_lease + key
        token = uuid.uuid4().hex
        ttl = str(int(self.lease_ttl * 1000))
        pause = 0.001
        net_deadline = time.monotonic() + WRITE_PATIENCE
        while True:
            try:
                got, value = self._take_script(
                    keys=[name, self._k_meta], args=[token, ttl], client=self._client
                )
            except _NET_ERRORS as exc:
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
        with self._leases_lock:
            self._leases[name] = token
        try:
            # What the last holder wrote is in Redis before its release: show it.
            self._catch_up(int(value))
        except BaseException:
            self._lease_drop(key, token)  # never leave a lease nobody will release
            raise
        return token

    def _lease_drop(self, key: str, token: str) -> None:
        name = self._k_lease + key
        leases = getattr(self._local, "leases", {})
        leases.pop(name, None)
        with self._leases_lock:
            if self._leases.get(name) == token:
                del self._leases[name]
        try:
            self._drop_script(keys=[name], args=[token], client=self._client)
        except _NET_ERRORS as exc:
            _LOG.warning(
                "server_state: could not release the lock of %r in Redis (%s); it expires in %g s",
                key,
                exc,
                self.lease_ttl,
            )

    def _wait_lease_free(self, name: str, held: list[str]) -> None:
        """Until another replica releases (or loses) the lock ``name``. A
        thread holding other locks meanwhile gets ``ServerStateDeadlockError``
        after ``LOCK_PATIENCE``, as it would in one process."""
        pause = 0.001
        deadline = time.monotonic() + _locks.LOCK_PATIENCE
        while not self._closing.is_set():
            try:
                if not self._client.exists(name):
                    return
            except _NET_ERRORS:
                pass
            if held and time.monotonic() > deadline:
                cut = len(self._k_lease)
                raise ServerStateDeadlockError([name[cut:]], [k[cut:] for k in held], _locks.LOCK_PATIENCE)
            self._closing.wait(pause)
            pause = min(pause * 2, 0.02)

    def _renew(self) -> None:
        ttl = str(int(self.lease_ttl * 1000))
        while not self._closing.wait(self.lease_ttl / 3):
            with self._leases_lock:
                held = list(self._leases.items())
            for name, token in held:
                try:
                    if not int(self._renew_script(keys=[name], args=[token, ttl], client=self._client)):
                        _LOG.warning(
                            "server_state: the lock %s was lost (expired); writes under it will fail", name
                        )
                except _NET_ERRORS as exc:
                    _LOG.warning("server_state: could not renew the lock %s (%s)", name, exc)


class _Respecting:
    """Inside ``update``/``transact``: commits wait while another replica
    holds the lock of a key they write (as they wait for the local lock)."""

    __slots__ = ("_local",)

    def __init__(self, local: threading.local) -> None:
        self._local = local

    def __enter__(self) -> None:
        self._local.respect = getattr(self._local, "respect", 0) + 1

    def __exit__(self, *exc: object) -> None:
        self._local.respect -= 1


class LeasedLock:
    """``server_state_lock[key]`` with Redis: this process's re-entrant lock,
    plus a lease in Redis while the outermost ``with`` lasts."""

    def __init__(self, store: RedisStore, key: str, local: threading.RLock) -> None:
        self._store, self._key, self._local = store, key, local
        self._depth = 0  # only the owning thread changes it
        self._token: str | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        if not self._local.acquire(blocking, timeout if blocking else -1):
            return False
        if self._depth:
            self._depth += 1
            return True
        try:
            token = self._store._lease_take(self._key, blocking, deadline)
        except BaseException:
            self._local.release()
            raise
        if token is None:
            self._local.release()
            return False
        self._token, self._depth = token, 1
        return True

    def release(self) -> None:
        if not self._local._is_owned():  # type: ignore[attr-defined]
            raise RuntimeError(f"server_state_lock[{self._key!r}] released without being held")
        self._depth -= 1
        if self._depth == 0:
            token, self._token = self._token, None
            try:
                if token is not None:
                    self._store._lease_drop(self._key, token)
            finally:
                self._local.release()
        else:
            self._local.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _is_owned(self) -> bool:
        return self._local._is_owned()  # type: ignore[attr-defined,no-any-return]

    def locked(self) -> bool:
        return self._depth > 0 or self._local._is_owned()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"<server_state_lock[{self._key!r}] (Redis lease, {'held' if self._depth else 'free'})>"


def _server_id(client: Any) -> str:
    """The Redis process' run id (a new one after every restart or
    failover); "" where INFO is not allowed."""
    try:
        return str(client.info("server").get("run_id", ""))
    except redis.ResponseError:
        return ""


def _origin_text(origin: Origin, who: str) -> str:
    """A commit's origin and writer as the stream carries them: the writer
    alone (never starting with ``[``) for a plain write, else JSON."""
    if origin is LOCAL or (not origin.round and not origin.chain and not origin.no_rerun):
        return who if not who.startswith("[") else json.dumps([0, [], False, who])
    return json.dumps([origin.round, sorted(origin.chain), origin.no_rerun, who])


def _origin_of(text: bytes) -> tuple[Origin, str]:
    if not text.startswith(b"["):
        return LOCAL, text.decode(errors="replace")
    try:
        round_, chain, no_rerun, *who = json.loads(text)
        return Origin(int(round_), frozenset(map(str, chain)), bool(no_rerun)), str(who[0]) if who else ""
    except (ValueError, TypeError):
        return LOCAL, ""


def _entries(reply: Any) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """The entries of a raw XREAD reply (RESP2: a list of [stream, entries];
    RESP3: a map of stream -> entries), each entry [id, [field, value, ...]]."""
    streams = reply.values() if isinstance(reply, dict) else (entries for _, entries in reply)
    return [(i, dict(zip(flat[::2], flat[1::2], strict=True))) for entries in streams for i, flat in entries]


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _parse_body(body: bytes) -> tuple[list[tuple[str, str, bytes, list[bytes]]], list[str]]:
    """A stream entry's writes ``(kind, key, payload or header, parts)`` and
    deletes: a kind byte, then its parts, each ``<length in bytes>:<bytes>``
    (see ``_COMMIT``)."""
    writes: list[tuple[str, str, bytes, list[bytes]]] = []
    deletes: list[str] = []
    i, end = 0, len(body)
    while i < end:
        kind = chr(body[i])
        n = _PARTS.get(kind)
        if n is None:
            raise ValueError(f"a stream entry of an unknown kind {kind!r} (written by a newer version?)")
        parts: list[bytes] = []
        i += 1
        for _ in range(n):
            colon = body.index(b":", i)
            start = colon + 1
            i = start + int(body[i:colon])
            parts.append(body[start:i])
        if kind == "d":
            deletes.append(parts[0].decode())
        else:
            writes.append((kind, parts[0].decode(), parts[1], parts[2:]))
    return writes, deletes


# Parts of each kind of write in a stream entry's body (see _COMMIT).
_PARTS = {"s": 2, "d": 1, "L": 3, "H": 3, "A": 4, "P": 5}


def _patch_op(key: str, header: bytes, old: Any, new: Any) -> list[Any] | None:
    """The commit script's arguments sending ``new`` as a patch of ``old``
    (the value Redis holds in the layout ``header``), or None when the patch
    would not be smaller or cannot be proved by identity."""
    if header[:1] == b"L":
        seq = seq_patch(old, new)
        if seq is None:
            return None
        keep, tail = seq
        items = encode_items(key, new, tail)
        return ["A", header, len(old), keep, len(items), *items]
    entries = map_patch(old, new)
    if entries is None:
        return None
    sets, dels = entries
    items = encode_items(key, new, chain.from_iterable(sets))
    fields = encode_items(key, new, dels)
    return ["P", header, len(old), len(items), *items, len(fields), *fields]
