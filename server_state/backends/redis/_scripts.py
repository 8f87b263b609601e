"""The Lua scripts the Redis committer runs, each with its contract: what it
is given (KEYS, ARGV), what it checks before it writes anything (Lua has no
rollback: every check comes first), what it writes, and what it returns.

The layout they work on (all keys share one hash tag, ``{ss:<namespace>}``,
so a namespace is one Redis Cluster slot):

- ``:data``  hash  key -> encoded value, or a two-byte header for a value
  kept item by item (``_layout``): then its items are in ``:l:<key>`` (a
  list) or ``:h:<key>`` (a hash);
- ``:ver``   hash  key -> the sequence of the commit that last wrote it;
- ``:meta``  hash  ``epoch`` (a random id, new when the data is new: a wiped
  or failed-over Redis is told apart) and ``seq`` (the last commit's);
- ``:log``   stream, one entry per commit: the ordered log every replica
  follows;
- ``:tx:<id>``     a commit's transaction id, kept ``TX_TTL`` s: a replayed
  commit (a retry after a lost reply) is recognised and applied once;
- ``:lease:<key>`` the token of the replica thread holding the key's lock;
- ``:stage:<tx>:<key>`` a big value's items on their way in.
"""

from __future__ import annotations

__all__ = ["COMMIT", "LEASE_DROP", "LEASE_RENEW", "LEASE_TAKE", "SNAPSHOT"]

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
COMMIT = """
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
SNAPSHOT = """
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

# KEYS: lease, meta. ARGV: token, ttl ms. Re-entrant for the same token.
# {1, seq}: ours now, and seq is the last commit (the taker waits until its
# mirror has it, so a read under the lock sees the last holder's writes);
# {0, pttl}: held by another for pttl ms more.
LEASE_TAKE = """
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
# KEYS: lease. ARGV: token, ttl ms. 1: extended (still ours); 0: lost (expired or
# taken over): the holder's next commit will be fenced off.
LEASE_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
# KEYS: lease. ARGV: token. 1: released; 0: it was not ours any more (expired,
# or taken by another since): left alone (compare-and-delete).
LEASE_DROP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
