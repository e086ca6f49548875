-- Maintenance: ARGV[4] 'purge' | 'prune_dead' | 'prune_outcomes', ARGV[5] the cut-off.
local B = KEYS[1]
local what = ARGV[4]
if what == 'purge' then
  -- Removes every message, live and dead; the ledger and the counter stay (a
  -- restarted counter could hand a stale lease's id and token to a new message).
  local n = 0
  for _, id in ipairs(redis.call('HVALS', B .. ':k')) do
    redis.call('DEL', M(B, id))
    n = n + 1
  end
  for _, mem in ipairs(redis.call('ZRANGE', B .. ':x', 0, -1)) do
    redis.call('DEL', M(B, string.sub(mem, 13)))
    n = n + 1
  end
  redis.call('DEL', B .. ':k', B .. ':r', B .. ':d', B .. ':l', B .. ':x')
  if n > 0 then wake(B) end
  return n
elseif what == 'prune_dead' then
  local doomed = redis.call('ZRANGEBYSCORE', B .. ':x', '-inf', ARGV[5])
  for _, mem in ipairs(doomed) do
    redis.call('DEL', M(B, string.sub(mem, 13)))
    redis.call('ZREM', B .. ':x', mem)
  end
  return #doomed
elseif what == 'prune_outcomes' then
  local doomed = redis.call('ZRANGEBYSCORE', B .. ':oe', '-inf', ARGV[5])
  for _, key in ipairs(doomed) do
    redis.call('HDEL', B .. ':o', key)
    redis.call('ZREM', B .. ':oe', key)
  end
  return #doomed
end
return redis.error_reply('leaseq: unknown admin ' .. what)
