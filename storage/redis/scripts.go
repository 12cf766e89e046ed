package redis

import goredis "github.com/redis/go-redis/v9"

// The Lua scripts. Each is one atomic step on the server, run with EVALSHA
// (EVAL when the server does not know it yet). KEYS[1] is always the
// "all incidents" set: it routes the script in Cluster mode, and every other
// key the script touches is derived from ARGV[1], the key prefix, so it
// shares that key's slot (the prefix is the hash tag in Cluster mode).
//
// The merge rules live in Go (dedupe.Folder); the scripts only check
// versions and markers, write records and move index memberships.

// applyScript: ARGV is laid out by Store.applyArgs, in sections, so that
// every bulk command takes a contiguous run of ARGV (no string building in
// Lua) and the script runs a few dozen commands per batch instead of
// several per incident:
//
//	header: prefix, marker lifetime (ms), n incidents, of which nnew new
//	        (version 1, first), d distinct fingerprints, of which c0 + c1
//	        checked (first), m event ids, ng index groups, ns singletons,
//	        the active set's key (prefix:state:Active), "1" when the
//	        server has ZMSCORE (6.2) ("0": one ZSCORE per event id)
//	R: n × (record key, JSON)            new incidents first: MSET as is
//	Z: n × (score, id)                   same order: ZADD as is
//	U: (n-nnew) × ("version":<v-1>} suffix, fingerprint, state,
//	   severity, source, type, active)   the updates' new index values;
//	                                     active is "1" or "0" (Go's
//	                                     incident.State.Active)
//	I: d identity keys (the fingerprints of the batch's new incidents:
//	   an update never moves a pointer), then d final ids (the last new
//	   incident of that fingerprint in batch order), then c1 expected
//	   pointers: the first c0 keys must be absent, the next c1 must hold
//	   these (every key is checked: c0 + c1 = d)
//	M: m event ids
//	G: ng × (set key, k, k ids)          index memberships of the new
//	                                     incidents (the active set
//	                                     included), grouped by set in Go
//	S: ns × (set key, id)                the sets with one new member
//	                                     (mostly fingerprint sets)
//	last: how long the attempt key lives (ms), this store's write-lease
//	      token (lease.go), and the attempt key (prefix:attempt:<id>)
//
// The attempt key makes a copy of the same call harmless, and a call whose
// answer was lost decidable (Store.Settle): a script that finds it "w"
// (written by an earlier copy: a go-redis retry, or the first copy run
// after the retry) returns {"ok"} and writes nothing; one that finds any
// other value (Settle claimed the attempt as abandoned) returns
// {"abandoned"} and writes nothing; one that writes sets it to "w".
//
// Checks, all before any write: no other store may hold the write lease
// (prefix:lease, see storage.WriteLeaser); a new incident's record must not exist; an
// update's record must end with the "version":<v-1>} suffix (Go encodes
// version last, so that suffix is the top-level version; a record of
// another shape has its version parsed instead); the identity
// pointer of each fingerprint with a new incident must name what the
// first of them reopens ("" for none: the batch's own pointer moves are
// checked in Go); no event may be marked applied.
// Then it writes the records, moves the updates' index memberships (old
// values read from the stored records; an update whose state changed goes
// into or out of the active set as its active flag says, an idempotent
// SADD or SREM), adds the new incidents', moves the
// identity pointers that changed, drops the expired markers and adds the
// batch's. Markers are the members of one sorted set, prefix:applied,
// scored by when they expire (server time in unix ms): one ZADD per batch
// instead of a SET PX per event, with the same meaning (a marker counts
// while its expiry is in the future, by the server's clock).
// Returns {"ok"}, {"abandoned"}, {"leased", holder}, {"conflict", id, stored version}, {"identity", index
// of the fingerprint in I (0-based), current pointer} or {"applied", event
// id}.
var applyScript = goredis.NewScript(`
local p = ARGV[1]
local px = tonumber(ARGV[2])
local n, nnew = tonumber(ARGV[3]), tonumber(ARGV[4])
local d, c0, c1 = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local m, ng, ns = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local active = ARGV[11]
local zm = ARGV[12] == '1'
local nupd = n - nnew
local R = 13
local Z = R + 2 * n
local U = Z + 2 * n
local I = U + 7 * nupd
local M = I + 2 * d + c1
local G = M + m
local CH = 4000
local ak = ARGV[#ARGV]
local seen = redis.call('GET', ak)
if seen == 'w' then return {'ok'} end
if seen then return {'abandoned'} end
local lease = redis.call('GET', p .. ':lease')
if lease and lease ~= ARGV[#ARGV - 1] then return {'leased', lease} end
-- run calls cmd [key] ARGV[a..b] in chunks (unpack has a stack limit) and
-- returns the replies of array commands concatenated.
local function run(cmd, key, a, b)
  local out = {}
  for lo = a, b, CH do
    local hi = math.min(lo + CH - 1, b)
    local r
    if key then r = redis.call(cmd, key, unpack(ARGV, lo, hi)) else r = redis.call(cmd, unpack(ARGV, lo, hi)) end
    if type(r) == 'table' then for i = 1, #r do out[#out + 1] = r[i] end end
  end
  return out
end
-- tcall is run for a Lua table of arguments.
local function tcall(cmd, t)
  local out = {}
  for lo = 1, #t, CH do
    local r = redis.call(cmd, unpack(t, lo, math.min(lo + CH - 1, #t)))
    if type(r) == 'table' then for i = 1, #r do out[#out + 1] = r[i] end end
  end
  return out
end
local function version(raw)
  if not raw then return '0' end
  local v = string.match(raw, '"version":(%d+)}$')
  if v then return v end
  local ok, t = pcall(cjson.decode, raw)
  if ok and type(t) == 'table' and t.version then return tostring(t.version) end
  return '?'
end
if nnew > 0 then
  local keys = {}
  for i = 0, nnew - 1 do keys[i + 1] = ARGV[R + 2 * i] end
  local found = 0
  for lo = 1, nnew, CH do found = found + redis.call('EXISTS', unpack(keys, lo, math.min(lo + CH - 1, nnew))) end
  if found > 0 then
    for i = 0, nnew - 1 do
      local raw = redis.call('GET', keys[i + 1])
      if raw then return {'conflict', ARGV[Z + 2 * i + 1], version(raw)} end
    end
  end
end
local olds = {}
if nupd > 0 then
  local keys = {}
  for j = 0, nupd - 1 do keys[j + 1] = ARGV[R + 2 * (nnew + j)] end
  olds = tcall('MGET', keys)
  for j = 0, nupd - 1 do
    local raw, suf = olds[j + 1], ARGV[U + 7 * j]
    if not raw or (string.sub(raw, -#suf) ~= suf and version(raw) ~= string.match(suf, '(%-?%d+)}$')) then
      return {'conflict', ARGV[Z + 2 * (nnew + j) + 1], version(raw)}
    end
  end
end
local cur = {}
if d > 0 then cur = run('MGET', nil, I, I + d - 1) end
for k = 1, c0 do
  if cur[k] then return {'identity', tostring(k - 1), cur[k]} end
end
local E = I + 2 * d
for k = 1, c1 do
  local have = cur[c0 + k] or ''
  if have ~= ARGV[E + k - 1] then return {'identity', tostring(c0 + k - 1), have} end
end
local applied = p .. ':applied'
local now = 0
if m > 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if zm then
    local sc = run('ZMSCORE', applied, M, M + m - 1)
    for j = 1, m do
      if sc[j] and tonumber(sc[j]) > now then return {'applied', ARGV[M + j - 1]} end
    end
  else
    for j = M, M + m - 1 do
      local sc = redis.call('ZSCORE', applied, ARGV[j])
      if sc and tonumber(sc) > now then return {'applied', ARGV[j]} end
    end
  end
end
if n > 0 then run('MSET', nil, R, Z - 1) end
-- index reads the indexed fields of a stored record without decoding all
-- of it. Go encodes an incident's fields in struct order: id, fingerprint,
-- (dedup_key, title, description), source, type, severity, peak_severity,
-- state, then resources and labels (the only nested values). A quote
-- inside a JSON string is always escaped, so the bytes "," (quote, comma,
-- quote) only occur between a string value and the next key: the first
-- ","source":" is the top-level key, found by a plain search, and the
-- patterns anchored there and at the start can only match top-level
-- fields (labels cannot hold that run of keys: Go sorts map keys). A value
-- with escapes, or anything unexpected, falls back to cjson.
local function index(raw)
  local fp = string.match(raw, '^{"id":"[^"\\]*","fingerprint":"([^"\\]*)",')
  local at = string.find(raw, '","source":"', 1, true)
  if fp and at then
    local src, typ, sev, st = string.match(raw, '^","source":"([^"\\]*)","type":"([^"\\]*)","severity":"([^"\\]*)","peak_severity":"[^"\\]*","state":"([^"\\]*)",', at)
    if src then return {fp, st, sev, src, typ} end
  end
  local t = cjson.decode(raw)
  return {tostring(t.fingerprint), tostring(t.state), tostring(t.severity), tostring(t.source), tostring(t.type)}
end
local fields = {'fingerprint', 'state', 'severity', 'source', 'type'}
local adds, rems = {}, {}
local function push(t, key, id)
  local l = t[key]
  if not l then l = {key}; t[key] = l end
  l[#l + 1] = id
end
for j = 0, nupd - 1 do
  local old = index(olds[j + 1])
  local b = U + 7 * j
  local id = ARGV[Z + 2 * (nnew + j) + 1]
  for k = 1, 5 do
    local v = ARGV[b + k]
    if old[k] ~= v then
      push(rems, p .. ':' .. fields[k] .. ':' .. old[k], id)
      push(adds, p .. ':' .. fields[k] .. ':' .. v, id)
    end
  end
  if old[2] ~= ARGV[b + 2] then
    if ARGV[b + 6] == '1' then push(adds, active, id) else push(rems, active, id) end
  end
end
-- Each set gets one SREM or SADD for the whole batch.
local function each(cmd, t)
  for _, l in pairs(t) do
    for lo = 2, #l, CH do redis.call(cmd, l[1], unpack(l, lo, math.min(lo + CH - 1, #l))) end
  end
end
each('SREM', rems)
each('SADD', adds)
local a = G
for g = 1, ng do
  local k = tonumber(ARGV[a + 1])
  if k <= CH then redis.call('SADD', ARGV[a], unpack(ARGV, a + 2, a + 1 + k)) else run('SADD', ARGV[a], a + 2, a + 1 + k) end
  a = a + 2 + k
end
for j = a, a + 2 * ns - 1, 2 do redis.call('SADD', ARGV[j], ARGV[j + 1]) end
if n > 0 then run('ZADD', p .. ':z:incidents', Z, U - 1) end
local moves = {}
for k = 0, d - 1 do
  local id = ARGV[I + d + k]
  if cur[k + 1] ~= id then
    moves[#moves + 1] = ARGV[I + k]
    moves[#moves + 1] = id
  end
end
if #moves > 0 then tcall('MSET', moves) end
if m > 0 then
  redis.call('ZREMRANGEBYSCORE', applied, '-inf', string.format('%d', now))
  local until_ = string.format('%d', now + px)
  for lo = M, M + m - 1, CH do
    local t = {}
    for j = lo, math.min(lo + CH - 1, M + m - 1) do
      t[#t + 1] = until_
      t[#t + 1] = ARGV[j]
    end
    redis.call('ZADD', applied, unpack(t))
  end
end
redis.call('SET', ak, 'w', 'PX', ARGV[#ARGV - 2])
return {'ok'}
`)

// lookupScript: ARGV = prefix, n, "1" when the server has ZMSCORE (6.2),
// then the n identity keys (prefix:identity:<fingerprint>), then the event
// ids. Returns n records (false when absent) followed by one 0/1 per event
// id: the read stage of a batch in one round trip (one MGET of the
// pointers, one of the records, one ZMSCORE of the markers, or one ZSCORE
// per event id before 6.2), as one consistent snapshot.
var lookupScript = goredis.NewScript(`
local p = ARGV[1]
local n = tonumber(ARGV[2])
local zm = ARGV[3] == '1'
local K = 4
local CH = 4000
local function mget(t, a, b)
  local out = {}
  for lo = a, b, CH do
    local r = redis.call('MGET', unpack(t, lo, math.min(lo + CH - 1, b)))
    for i = 1, #r do out[#out + 1] = r[i] end
  end
  return out
end
local out = {}
local ids = {}
if n > 0 then ids = mget(ARGV, K, K + n - 1) end
local keys, at = {}, {}
for i = 1, n do
  out[i] = false
  if ids[i] then
    keys[#keys + 1] = p .. ':incident:' .. ids[i]
    at[#keys] = i
  end
end
if #keys > 0 then
  local recs = mget(keys, 1, #keys)
  for j = 1, #keys do out[at[j]] = recs[j] end
end
if #ARGV >= K + n then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local applied = p .. ':applied'
  if zm then
    for lo = K + n, #ARGV, CH do
      local sc = redis.call('ZMSCORE', applied, unpack(ARGV, lo, math.min(lo + CH - 1, #ARGV)))
      for j = 1, #sc do
        if sc[j] and tonumber(sc[j]) > now then out[#out + 1] = 1 else out[#out + 1] = 0 end
      end
    end
  else
    for j = K + n, #ARGV do
      local sc = redis.call('ZSCORE', applied, ARGV[j])
      if sc and tonumber(sc) > now then out[#out + 1] = 1 else out[#out + 1] = 0 end
    end
  end
end
return out
`)

// findOpenScript: ARGV = prefix, fingerprint. Returns the latest record of
// the identity or nil.
var findOpenScript = goredis.NewScript(`
local id = redis.call('GET', ARGV[1] .. ':identity:' .. ARGV[2])
if not id then return false end
return redis.call('GET', ARGV[1] .. ':incident:' .. id)
`)

// deleteScript: ARGV = prefix, the active set's key, then pairs of an id
// and the version to delete it at ("" for any). Removes each record that
// exists at that version, every index membership (the active set's too:
// an SREM that is a no-op for an inactive incident) and the identity
// pointer when it points at the id. Returns how many it removed.
var deleteScript = goredis.NewScript(`
local p = ARGV[1]
local n = 0
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  local raw = redis.call('GET', p .. ':incident:' .. id)
  local old = raw and cjson.decode(raw)
  if old and (ARGV[i + 1] == '' or tostring(old.version) == ARGV[i + 1]) then
    redis.call('DEL', p .. ':incident:' .. id)
    redis.call('SREM', p .. ':incidents', id)
    redis.call('ZREM', p .. ':z:incidents', id)
    for _, f in ipairs({'fingerprint', 'state', 'severity', 'source', 'type'}) do
      redis.call('SREM', p .. ':' .. f .. ':' .. tostring(old[f]), id)
    end
    redis.call('SREM', ARGV[2], id)
    local ptr = p .. ':identity:' .. tostring(old.fingerprint)
    if redis.call('GET', ptr) == id then redis.call('DEL', ptr) end
    n = n + 1
  end
end
return n
`)

// upgradeScript: ARGV = the layout marker key (prefix:schema), the
// layout version this build writes, the active set's key, the set of all
// incidents' ids (prefix:incidents), then the keys of the active states'
// sets (Go's incident.State.Active). When the marker is missing or older,
// it builds the active set as the union of those sets (SUNIONSTORE, which
// replaces whatever the key held) and sets the marker; otherwise it does
// nothing. One script: several stores opening at once run it one after
// the other, the first builds, the others find the marker. Returns the
// size of the set it built, -1 when the marker was current, or -2 when it
// set the marker on a keyspace holding no incident (a new deployment:
// nothing was upgraded).
var upgradeScript = goredis.NewScript(`
local have = tonumber(redis.call('GET', ARGV[1]) or '0') or 0
local want = tonumber(ARGV[2])
if have >= want then return -1 end
local n = redis.call('SUNIONSTORE', ARGV[3], unpack(ARGV, 5, #ARGV))
redis.call('SET', ARGV[1], ARGV[2])
if n == 0 and redis.call('SCARD', ARGV[4]) == 0 then return -2 end
return n
`)

// queryBudget is how many candidates queryScript walks before it falls
// back to a server-side ZINTERSTORE of the whole filter.
const queryBudget = 20000

// queryScript answers List and Count. ARGV = prefix, mode ("list" or
// "count"), min score, max score (unix µs or -inf/+inf), offset, limit
// (<= 0: all), walk budget, n groups, "1" when the server has SINTERCARD
// (7.0), "1" for read-only mode (no scratch keys), then per group: field,
// k, k values.
// A group is one filter field: OR within it, AND across groups.
//
// Newest-first order comes from one sorted set, prefix:z:incidents (score =
// last_seen in µs); the per-value index sets are plain sets.
//
// count: SCARD, a sum of SCARDs, SINTERCARD (before 7.0: SINTERSTORE into
// a temporary key, whose reply is the count), or (with time bounds)
// ZINTERSTORE of the sorted set with the groups (weight 0) and ZCOUNT.
// list: when the filter is expected to match often enough, walk the sorted
// set newest first by rank (O(log N) per chunk) and check each id with
// SISMEMBER against every group, most selective first, until offset+limit
// matches; when it is not, or the walk passes the budget, ZINTERSTORE the
// sorted set with the groups (its cost follows the smallest group) and read
// the page with one ZREVRANGEBYSCORE. Returns the JSON records of the page,
// newest first. Temporary keys live under prefix:tmp and are deleted before
// the script returns.
//
// Read-only mode writes nothing, for where Redis refuses the temporary keys
// (a read-only replica, an ACL user that may only read, maxmemory reached
// with noeviction): every intersection that would be stored is built in the
// script's memory instead (collect: the ids of the smallest group, or one
// SINTER of the groups of one set when the smallest is one of them, each
// checked with SISMEMBER against the other groups and, where the stored
// intersection includes the sorted set, with ZSCORE against the score
// range), counted, or ordered newest first with ties by id descending byte
// by byte (the order of ZREVRANGEBYSCORE; a heap keeps the offset+limit
// newest) and paged. Same results, at the cost of Lua memory and time in
// proportion to the smallest group. SINTERCARD of groups of one set each,
// and the walk, write nothing and stay as they are.
var queryScript = goredis.NewScript(`
local p = ARGV[1]
local mode = ARGV[2]
local min, max = ARGV[3], ARGV[4]
local offset = tonumber(ARGV[5])
local limit = tonumber(ARGV[6])
local budget = tonumber(ARGV[7])
local ng = tonumber(ARGV[8])
local sic = ARGV[9] == '1'
local ro = ARGV[10] == '1'
local zall = p .. ':z:incidents'
local tmp = p .. ':tmp'
local total = redis.call('ZCARD', zall)
local groups = {}
local a = 11
for g = 1, ng do
  local f = ARGV[a]
  local k = tonumber(ARGV[a + 1])
  local grp = {s = {}, size = 0}
  for i = 1, k do
    grp.s[i] = p .. ':' .. f .. ':' .. ARGV[a + 1 + i]
    grp.size = grp.size + redis.call('SCARD', grp.s[i])
  end
  groups[g] = grp
  a = a + 2 + k
end
table.sort(groups, function(x, y) return x.size < y.size end)
local temps = {}
local function skey(g)
  local grp = groups[g]
  if #grp.s == 1 then return grp.s[1] end
  local t = tmp .. ':' .. g
  local args = {'SUNIONSTORE', t}
  for _, k in ipairs(grp.s) do args[#args + 1] = k end
  redis.call(unpack(args))
  temps[#temps + 1] = t
  return t
end
local function intersect()
  local args = {'ZINTERSTORE', tmp, ng + 1, zall}
  for g = 1, ng do args[#args + 1] = skey(g) end
  args[#args + 1] = 'WEIGHTS'
  args[#args + 1] = 1
  for g = 1, ng do args[#args + 1] = 0 end
  redis.call(unpack(args))
  temps[#temps + 1] = tmp
  return tmp
end
local function cleanup()
  if #temps > 0 then redis.call('DEL', unpack(temps)) end
end
local function member(g, id)
  for _, s in ipairs(groups[g].s) do
    if redis.call('SISMEMBER', s, id) == 1 then return true end
  end
  return false
end
-- collect is the read-only intersection: {id, score} of every id in all
-- groups and, with zs, in the sorted set with a score from min to max
-- (score nil without zs); with only, how many there are. When the smallest
-- group is one set, one SINTER intersects the groups of one set; otherwise
-- the smallest group's members are taken, each once (as SUNIONSTORE would:
-- a group's sets are disjoint only while the indexes are exact). The other
-- groups are checked with SISMEMBER.
local function collect(zs, only)
  local lo, hi = -math.huge, math.huge
  if min ~= '-inf' then lo = tonumber(min) end
  if max ~= '+inf' then hi = tonumber(max) end
  local cands, check = {}, {}
  if #groups[1].s == 1 then
    local args = {'SINTER'}
    for g = 1, ng do
      if #groups[g].s == 1 then args[#args + 1] = groups[g].s[1] else check[#check + 1] = g end
    end
    cands = redis.call(unpack(args))
  else
    local seen = {}
    for _, s in ipairs(groups[1].s) do
      for _, id in ipairs(redis.call('SMEMBERS', s)) do
        if not seen[id] then
          seen[id] = true
          cands[#cands + 1] = id
        end
      end
    end
    for g = 2, ng do check[#check + 1] = g end
  end
  local out, n = {}, 0
  for _, id in ipairs(cands) do
    local ok = true
    for _, g in ipairs(check) do
      if not member(g, id) then
        ok = false
        break
      end
    end
    local sc = nil
    if ok and zs then
      sc = redis.call('ZSCORE', zall, id)
      if sc then sc = tonumber(sc) end
      ok = sc and sc >= lo and sc <= hi
    end
    if ok and only then
      n = n + 1
    elseif ok then
      out[#out + 1] = {id, sc}
    end
  end
  if only then return n end
  return out
end
-- newer is ZREVRANGEBYSCORE's order: score descending, then the member
-- descending byte by byte (Lua's < on strings follows the locale).
local function newer(x, y)
  if x[2] ~= y[2] then return x[2] > y[2] end
  local a, b = x[1], y[1]
  for i = 1, math.min(#a, #b) do
    local c, d = string.byte(a, i), string.byte(b, i)
    if c ~= d then return c > d end
  end
  return #a > #b
end
-- newest sorts collect's entries newest first and keeps the first want
-- of them (all when want <= 0). With fewer kept than found, a heap of the
-- want newest so far (its root the oldest of them) spares most of the
-- sorting: one comparison for most entries.
local function newest(all, want)
  if want > 0 and want < #all then
    local h = {}
    for _, e in ipairs(all) do
      local n = #h
      if n < want then
        h[n + 1] = e
        local i = n + 1
        while i > 1 do
          local up = math.floor(i / 2)
          if not newer(h[up], h[i]) then break end
          h[up], h[i] = h[i], h[up]
          i = up
        end
      elseif newer(e, h[1]) then
        h[1] = e
        local i = 1
        while true do
          local l, m = 2 * i, i
          if l <= n and newer(h[m], h[l]) then m = l end
          if l + 1 <= n and newer(h[m], h[l + 1]) then m = l + 1 end
          if m == i then break end
          h[m], h[i] = h[i], h[m]
          i = m
        end
      end
    end
    all = h
  end
  table.sort(all, newer)
  return all
end
local plain = true
for g = 1, ng do
  if #groups[g].s > 1 then plain = false end
end
local bounded = min ~= '-inf' or max ~= '+inf'
if mode == 'count' then
  local c
  if ng == 0 and not bounded then
    c = total
  elseif ng == 0 then
    c = redis.call('ZCOUNT', zall, min, max)
  elseif ng == 1 and not bounded then
    c = groups[1].size
  elseif ro and not (not bounded and sic and plain) then
    c = collect(bounded, true)
  elseif not bounded and sic then
    local args = {'SINTERCARD', ng}
    for g = 1, ng do args[#args + 1] = skey(g) end
    c = redis.call(unpack(args))
  elseif not bounded then
    local args = {'SINTERSTORE', tmp}
    for g = 1, ng do args[#args + 1] = skey(g) end
    temps[#temps + 1] = tmp
    c = redis.call(unpack(args))
  else
    c = redis.call('ZCOUNT', intersect(), min, max)
  end
  cleanup()
  return c
end
local first = 0
if max ~= '+inf' then first = redis.call('ZCOUNT', zall, '(' .. max, '+inf') end
local last = total - 1
if min ~= '-inf' then last = last - redis.call('ZCOUNT', zall, '-inf', '(' .. min) end
local want = -1
if limit > 0 then want = offset + limit end
-- No match lies past the ids in the score range, nor past a group's size:
-- a page from there on is empty, answered before any walk or
-- intersection (a deep offset held Redis for seconds to say so).
local bound = last - first + 1
for g = 1, ng do bound = math.min(bound, groups[g].size) end
if offset >= bound then return {} end
local ids = {}
if ng == 0 then
  if first + offset <= last then
    local stop = last
    if want > 0 then stop = math.min(last, first + want - 1) end
    ids = redis.call('ZREVRANGE', zall, first + offset, stop)
  end
else
  local sel = 1
  for g = 1, ng do sel = sel * groups[g].size / math.max(total, 1) end
  local walk = want > 0 and sel > 0 and want / sel <= budget
  local matched, pos, done = 0, first, false
  while walk and not done and pos <= last do
    local chunk = redis.call('ZREVRANGE', zall, pos, math.min(pos + 255, last))
    if #chunk == 0 then break end
    pos = pos + #chunk
    for _, id in ipairs(chunk) do
      local ok = true
      for g = 1, ng do
        local found = false
        for _, s in ipairs(groups[g].s) do
          if redis.call('SISMEMBER', s, id) == 1 then found = true break end
        end
        if not found then ok = false break end
      end
      if ok then
        matched = matched + 1
        if matched > offset then ids[#ids + 1] = id end
        if matched >= want then done = true break end
      end
    end
    if not done and pos - first >= budget then walk = false end
  end
  if not done and not walk and ro then
    local all = newest(collect(true), want)
    ids = {}
    for i = offset + 1, #all do ids[#ids + 1] = all[i][1] end
  elseif not done and not walk then
    local lim = limit
    if lim <= 0 then lim = -1 end
    ids = redis.call('ZREVRANGEBYSCORE', intersect(), max, min, 'LIMIT', offset, lim)
  end
end
cleanup()
local out = {}
for i = 1, #ids, 500 do
  local keys = {}
  for j = i, math.min(i + 499, #ids) do keys[#keys + 1] = p .. ':incident:' .. ids[j] end
  local recs = redis.call('MGET', unpack(keys))
  for _, r in ipairs(recs) do out[#out + 1] = r end
end
return out
`)
