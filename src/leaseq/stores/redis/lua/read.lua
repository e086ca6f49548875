-- Reads (after applying due timers, so they see the logical state at `now`).
-- ARGV[4] the read, ARGV[5] its argument.
local B = KEYS[1]
local now = clock(ARGV[1])
normalize(B, now)
local what, arg = ARGV[4], ARGV[5]
local ns = n2s(now)

local function live_id(key)
  local id = redis.call('HGET', B .. ':k', key)
  if id then reap_one(B, id, now) end
  return redis.call('HGET', B .. ':k', key)
end

if what == 'msg' then
  local st = redis.call('HGET', M(B, arg), 'st')
  if not st then return {ns, false} end
  if st == 'l' then reap_one(B, arg, now) end
  return {ns, snap(B, arg)}
elseif what == 'peek' then
  local id = live_id(arg)
  if not id then return {ns, false} end
  return {ns, snap(B, id)}
elseif what == 'keys' then
  local out = {}
  if arg == 'dead' then
    for _, mem in ipairs(redis.call('ZRANGE', B .. ':x', 0, -1)) do
      out[#out + 1] = redis.call('HGET', M(B, string.sub(mem, 13)), 'key')
    end
  elseif arg == 'leased' then
    for _, mem in ipairs(redis.call('ZRANGE', B .. ':l', 0, -1)) do
      out[#out + 1] = redis.call('HGET', M(B, string.sub(mem, 13)), 'key')
    end
  else
    for _, id in ipairs(redis.call('ZRANGE', B .. ':r', 0, -1)) do
      out[#out + 1] = redis.call('HGET', M(B, id), 'key')
    end
    -- Delayed ones by due time (then priority), after the claimable ones.
    for _, mem in ipairs(redis.call('ZRANGE', B .. ':d', 0, -1)) do
      out[#out + 1] = redis.call('HGET', M(B, string.sub(mem, 13)), 'key')
    end
  end
  return {ns, out}
elseif what == 'count_ready' then
  return {ns, redis.call('ZCARD', B .. ':r')}
elseif what == 'count_live' then
  return {ns, redis.call('HLEN', B .. ':k')}
elseif what == 'dead' then
  local out = {}
  local stop = tonumber(arg)
  for _, mem in ipairs(redis.call('ZRANGE', B .. ':x', 0, stop)) do
    out[#out + 1] = snap(B, string.sub(mem, 13))
  end
  return {ns, out}
elseif what == 'stats' then
  local oldest_av, oldest_la = false, false
  for _, id in ipairs(redis.call('ZRANGE', B .. ':r', 0, -1)) do
    local av = tonumber(redis.call('HGET', M(B, id), 'av'))
    if not oldest_av or av < oldest_av then oldest_av = av end
  end
  local owners, sum_la = {}, 0
  for _, mem in ipairs(redis.call('ZRANGE', B .. ':l', 0, -1)) do
    local r = redis.call('HMGET', M(B, string.sub(mem, 13)), 'la', 'by')
    local la = tonumber(r[1])
    if not oldest_la or la < oldest_la then oldest_la = la end
    sum_la = sum_la + la
    local by = r[2] or ''
    owners[by] = (owners[by] or 0) + 1
  end
  local flat = {}
  for by, n in pairs(owners) do
    flat[#flat + 1] = by
    flat[#flat + 1] = n
  end
  return {ns, {redis.call('ZCARD', B .. ':r'), redis.call('ZCARD', B .. ':d'),
    redis.call('ZCARD', B .. ':l'), redis.call('ZCARD', B .. ':x'),
    redis.call('HLEN', B .. ':k'), oldest_av and n2s(oldest_av), oldest_la and n2s(oldest_la),
    flat, n2s(sum_la)}}
elseif what == 'next_due' then
  if arg ~= '' then
    local id = live_id(arg)
    if not id then return {ns, false} end
    local r = redis.call('HMGET', M(B, id), 'st', 'e', 'av', 'mem')
    if r[1] == 'l' then return {ns, r[2]} end
    if r[4] then return {ns, r[3]} end
    return {ns, false}
  end
  local best = false
  for _, z in ipairs({':d', ':l'}) do
    local first = redis.call('ZRANGE', B .. z, 0, 0, 'WITHSCORES')
    if first[2] and (not best or tonumber(first[2]) < tonumber(best)) then best = first[2] end
  end
  return {ns, best}
elseif what == 'outcome' then
  return {ns, redis.call('HGET', B .. ':o', arg)}
end
return redis.error_reply('leaseq: unknown read ' .. what)
