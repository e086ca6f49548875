-- put, put_many and publish: every request applied, or none (a dry run decides first).
-- KEYS: one base key per queue. ARGV[4] = number of requests, then 11 per request:
-- queue index, maxsize, has key, key, value, priority, delay, at, if_ready,
-- if_in_flight, max_attempts ('' = none).
local now = clock(ARGV[1])
local READY = {update = 'update', replace = 'replace', keep = 'keep', reject = 'reject_ready'}
local HELD = {update = 'update_held', reject = 'reject_held', buffer = 'buffer', keep = 'keep'}
local woken = {}
for qi = 1, #KEYS do
  for _, k in ipairs(normalize(KEYS[qi], now)) do woken[#woken + 1] = k end
end

local reqs = {}
local n = tonumber(ARGV[4])
for i = 0, n - 1 do
  local o = 4 + i * 11
  reqs[#reqs + 1] = {
    qi = tonumber(ARGV[o + 1]), maxsize = tonumber(ARGV[o + 2]),
    key = ARGV[o + 3] == '1' and ARGV[o + 4] or nil, v = ARGV[o + 5],
    p = tonumber(ARGV[o + 6]), delay = tonumber(ARGV[o + 7]), at = ARGV[o + 8],
    ir = ARGV[o + 9], iif = ARGV[o + 10], ma = ARGV[o + 11],
  }
end

-- The key's live message and its state (an expired lease written first).
local function current(B, key)
  local id = redis.call('HGET', B .. ':k', key)
  if not id then return nil, nil end
  reap_one(B, id, now)
  local st = redis.call('HGET', M(B, id), 'st')
  if st == 'x' or not st then return nil, nil end
  return id, st
end

local function decide(st, r)
  if st == nil then return 'insert' end
  if st == 'r' then return READY[r.ir] end
  return HELD[r.iif]
end

-- Dry run: refusals and room, before anything is written.
local seen, new = {}, {}
for _, r in ipairs(reqs) do
  local B = KEYS[r.qi]
  seen[r.qi] = seen[r.qi] or {}
  new[r.qi] = new[r.qi] or 0
  if r.key == nil then
    new[r.qi] = new[r.qi] + 1
  else
    local st
    if seen[r.qi][r.key] ~= nil then st = seen[r.qi][r.key] or nil
    else local _; _, st = current(B, r.key) end
    local action = decide(st, r)
    if action == 'reject_ready' then return {'E', 'KeyExists', r.qi, r.key} end
    if action == 'reject_held' then return {'E', 'KeyInFlight', r.qi, r.key} end
    if action == 'insert' then
      new[r.qi] = new[r.qi] + 1
      seen[r.qi][r.key] = 'r'
    elseif action == 'replace' then seen[r.qi][r.key] = 'r'
    else seen[r.qi][r.key] = st or false end
  end
end
for qi, count in pairs(new) do
  local maxsize = reqs[1].maxsize
  for _, r in ipairs(reqs) do if r.qi == qi then maxsize = r.maxsize end end
  if maxsize > 0 then
    local live = redis.call('HLEN', KEYS[qi] .. ':k')
    if live + count > maxsize then return {'E', 'Full', qi, live, maxsize} end
  end
end

-- A new message: the caller knows every field but these two, so the reply carries
-- just the id and due time (no echo of the value, no snapshot to read and decode).
local function insert(B, r, key)
  local seq = nextseq(B)
  local id = string.format('%x', seq)
  key = key or id
  local avail = avail_of(now, r.delay, r.at)
  local kind = insert_msg(B, seq, id, key, r.v, r.p, avail, r.ma, now)
  return {kind, id, n2s(avail)}
end

local function remove_live(B, id)
  local m = M(B, id)
  local r = redis.call('HMGET', m, 'key', 'mem', 'st')
  redis.call('ZREM', B .. ':r', id)
  if r[2] then
    redis.call('ZREM', B .. ':d', r[2])
    redis.call('ZREM', B .. ':l', r[2])
  end
  redis.call('HDEL', B .. ':k', r[1])
  redis.call('DEL', m)
end

local function apply(r)
  local B = KEYS[r.qi]
  if r.key == nil then return insert(B, r, nil) end
  local id, st = current(B, r.key)
  local action = decide(st, r)
  if action == 'insert' then return insert(B, r, r.key) end
  local m = M(B, id)
  if action == 'update' or action == 'update_held' then
    redis.call('HSET', m, 'v', r.v)
    if action == 'update_held' then drop_follow(m) end
    event(m, now, 'updated')
  elseif action == 'replace' then
    remove_live(B, id)
    return insert(B, r, r.key)
  elseif action == 'buffer' then
    -- One follow-up slot: the newest value wins; it keeps the id it got first.
    local fid = redis.call('HGET', m, 'fid') or string.format('%x', nextseq(B))
    redis.call('HSET', m, 'fid', fid, 'fv', r.v, 'fp', r.p, 'fd', n2s(r.delay), 'fat', r.at,
      'fma', r.ma)
    event(m, now, 'buffered')
    return {'B', fid}
  end
  return {'K', snap(B, id)}
end

local out = {}
for _, r in ipairs(reqs) do out[#out + 1] = apply(r) end
for qi = 1, #KEYS do wake(KEYS[qi]) end
return {n2s(now), woken, out}
