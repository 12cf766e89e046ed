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

// indexedFields are the JSON fields of an incident that have index sets,
// in the order Apply passes their values.
var indexedFields = []string{"fingerprint", "state", "severity", "source", "type"}

// applyFields is how many ARGV entries one incident takes in applyScript.
const applyFields = 10

// applyScript: ARGV = prefix, marker lifetime (ms), n incidents, m events,
// then per incident: id, version, fingerprint, state, severity, source,
// type, score (last_seen in unix µs), json, reopen_of; then the m event ids.
// A new incident (version 1) must find its identity pointer, as the batch
// has moved it so far, naming its reopen_of ("" for none): otherwise another
// writer opened the identity since the Lookup. Every incident then moves its
// identity pointer to itself, in batch order.
// Returns {"ok"}, {"conflict", id, stored version}, {"identity", id,
// current pointer} or {"applied", event id}.
var applyScript = goredis.NewScript(`
local p = ARGV[1]
local px = ARGV[2]
local n = tonumber(ARGV[3])
local m = tonumber(ARGV[4])
local F = 10
local fields = {'fingerprint', 'state', 'severity', 'source', 'type'}
-- index reads the version and the indexed fields of a stored record
-- without decoding all of it. Go encodes an incident's fields in struct
-- order: fingerprint, source, type, severity and state come before
-- resources and labels (the only nested values), and version is last. So
-- the first "field":"value" with an unescaped quote is the top-level field
-- (a quote inside a JSON string is always escaped). A value with escapes,
-- or anything unexpected, falls back to cjson.
local function index(raw)
  local out = {version = string.match(raw, '"version":(%d+)}$')}
  if not out.version then return cjson.decode(raw) end
  for _, f in ipairs(fields) do
    out[f] = string.match(raw, '"' .. f .. '":"([^"\\]*)"')
    if not out[f] then return cjson.decode(raw) end
  end
  return out
end
local olds = {}
local ptrs = {}
local stored = {}
for i = 0, n - 1 do
  local b = 5 + i * F
  local id = ARGV[b]
  local raw = redis.call('GET', p .. ':incident:' .. id)
  local have = 0
  if raw then
    local old = index(raw)
    have = tonumber(old.version) or -1
    olds[i] = old
  end
  if have ~= tonumber(ARGV[b + 1]) - 1 then
    return {'conflict', id, tostring(have)}
  end
  local fp = ARGV[b + 2]
  local latest = ptrs[fp]
  if latest == nil then
    latest = redis.call('GET', p .. ':identity:' .. fp) or ''
    stored[fp] = latest
  end
  if ARGV[b + 1] == '1' and latest ~= ARGV[b + 9] then
    return {'identity', id, latest}
  end
  ptrs[fp] = id
end
local eb = 5 + n * F
for lo = 0, m - 1, 500 do
  local keys = {}
  for j = lo, math.min(lo + 499, m - 1) do keys[#keys + 1] = p .. ':applied:' .. ARGV[eb + j] end
  if redis.call('EXISTS', unpack(keys)) > 0 then
    for j = lo, math.min(lo + 499, m - 1) do
      if redis.call('EXISTS', keys[j - lo + 1]) == 1 then return {'applied', ARGV[eb + j]} end
    end
  end
end
-- Index changes are grouped by key so each set gets one SREM and one SADD
-- (and the sorted set one ZADD) for the whole batch: far fewer commands to
-- run and to propagate to the AOF and replicas.
local adds, rems, zadd = {}, {}, {'ZADD', p .. ':z:incidents'}
local function push(t, key, id)
  local l = t[key]
  if not l then l = {}; t[key] = l end
  l[#l + 1] = id
end
for i = 0, n - 1 do
  local b = 5 + i * F
  local id = ARGV[b]
  local old = olds[i]
  redis.call('SET', p .. ':incident:' .. id, ARGV[b + 8])
  if not old then push(adds, p .. ':incidents', id) end
  zadd[#zadd + 1] = ARGV[b + 7]
  zadd[#zadd + 1] = id
  for k = 1, 5 do
    local f = fields[k]
    local v = ARGV[b + 1 + k]
    if old and old[f] ~= v then push(rems, p .. ':' .. f .. ':' .. tostring(old[f]), id) end
    if not old or old[f] ~= v then push(adds, p .. ':' .. f .. ':' .. v, id) end
  end
end
local function each(cmd, t)
  for key, ids in pairs(t) do
    for lo = 1, #ids, 1000 do
      redis.call(cmd, key, unpack(ids, lo, math.min(lo + 999, #ids)))
    end
  end
end
each('SREM', rems)
each('SADD', adds)
for lo = 3, #zadd, 2000 do
  redis.call('ZADD', zadd[2], unpack(zadd, lo, math.min(lo + 1999, #zadd)))
end
for fp, id in pairs(ptrs) do
  if stored[fp] ~= id then redis.call('SET', p .. ':identity:' .. fp, id) end
end
for j = 0, m - 1 do
  redis.call('SET', p .. ':applied:' .. ARGV[eb + j], '1', 'PX', px)
end
return {'ok'}
`)

// lookupScript: ARGV = prefix, n fingerprints, then the fingerprints, then
// the event ids. Returns n records (false when absent) followed by one 0/1
// per event id: the read stage of a batch in one round trip, as one
// consistent snapshot.
var lookupScript = goredis.NewScript(`
local p = ARGV[1]
local n = tonumber(ARGV[2])
local out = {}
for i = 1, n do
  local id = redis.call('GET', p .. ':identity:' .. ARGV[2 + i])
  if id then
    out[i] = redis.call('GET', p .. ':incident:' .. id)
  else
    out[i] = false
  end
end
for lo = 3 + n, #ARGV, 500 do
  local keys = {}
  for j = lo, math.min(lo + 499, #ARGV) do keys[#keys + 1] = p .. ':applied:' .. ARGV[j] end
  for _, v in ipairs(redis.call('MGET', unpack(keys))) do
    if v then out[#out + 1] = 1 else out[#out + 1] = 0 end
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

// deleteScript: ARGV = prefix, id. Removes the record, every index
// membership and the identity pointer when it points at the id. Returns 1,
// or 0 when there was no such incident.
var deleteScript = goredis.NewScript(`
local p = ARGV[1]
local id = ARGV[2]
local raw = redis.call('GET', p .. ':incident:' .. id)
if not raw then return 0 end
local old = cjson.decode(raw)
redis.call('DEL', p .. ':incident:' .. id)
redis.call('SREM', p .. ':incidents', id)
redis.call('ZREM', p .. ':z:incidents', id)
for _, f in ipairs({'fingerprint', 'state', 'severity', 'source', 'type'}) do
  redis.call('SREM', p .. ':' .. f .. ':' .. tostring(old[f]), id)
end
local ptr = p .. ':identity:' .. tostring(old.fingerprint)
if redis.call('GET', ptr) == id then redis.call('DEL', ptr) end
return 1
`)

// queryBudget is how many candidates queryScript walks before it falls
// back to a server-side ZINTERSTORE of the whole filter.
const queryBudget = 20000

// queryScript answers List and Count. ARGV = prefix, mode ("list" or
// "count"), min score, max score (unix µs or -inf/+inf), offset, limit
// (<= 0: all), walk budget, n groups, then per group: field, k, k values.
// A group is one filter field: OR within it, AND across groups.
//
// Newest-first order comes from one sorted set, prefix:z:incidents (score =
// last_seen in µs); the per-value index sets are plain sets.
//
// count: SCARD, a sum of SCARDs, SINTERCARD, or (with time bounds)
// ZINTERSTORE of the sorted set with the groups (weight 0) and ZCOUNT.
// list: when the filter is expected to match often enough, walk the sorted
// set newest first by rank (O(log N) per chunk) and check each id with
// SISMEMBER against every group, most selective first, until offset+limit
// matches; when it is not, or the walk passes the budget, ZINTERSTORE the
// sorted set with the groups (its cost follows the smallest group) and read
// the page with one ZREVRANGEBYSCORE. Returns the JSON records of the page,
// newest first. Temporary keys live under prefix:tmp and are deleted before
// the script returns.
var queryScript = goredis.NewScript(`
local p = ARGV[1]
local mode = ARGV[2]
local min, max = ARGV[3], ARGV[4]
local offset = tonumber(ARGV[5])
local limit = tonumber(ARGV[6])
local budget = tonumber(ARGV[7])
local ng = tonumber(ARGV[8])
local zall = p .. ':z:incidents'
local tmp = p .. ':tmp'
local total = redis.call('ZCARD', zall)
local groups = {}
local a = 9
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
local bounded = min ~= '-inf' or max ~= '+inf'
if mode == 'count' then
  local c
  if ng == 0 and not bounded then
    c = total
  elseif ng == 0 then
    c = redis.call('ZCOUNT', zall, min, max)
  elseif ng == 1 and not bounded then
    c = groups[1].size
  elseif not bounded then
    local args = {'SINTERCARD', ng}
    for g = 1, ng do args[#args + 1] = skey(g) end
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
  if not done and not walk then
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
