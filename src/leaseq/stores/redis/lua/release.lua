-- release: ARGV[4] id, ARGV[5] token, ARGV[6] delay, ARGV[7] front,
-- ARGV[8] has error, ARGV[9] error.
local B = KEYS[1]
local now = clock(ARGV[1])
local woken = normalize(B, now)
local id = ARGV[4]
local lost = not_held(B, id, ARGV[5], now)
if lost then return lost end
local m = M(B, id)
local front = ARGV[7] == '1'
local delay = tonumber(ARGV[6])
redis.call('ZREM', B .. ':l', redis.call('HGET', m, 'mem'))
redis.call('HDEL', m, 'by', 't', 'mem')
local err = nil
if ARGV[8] == '1' then
  err = ARGV[9]
  redis.call('HSET', m, 'err', err)
end
local kind
if exhausted(m) then
  kind = 'X' .. (kill(B, id, m, now, 'max_attempts') or '')
else
  event(m, now, 'released', err)
  if delay > 0 then
    local due = now + delay
    redis.call('HSET', m, 'st', 'r', 'av', n2s(due))
    redis.call('HDEL', m, 'e')
    local fv = redis.call('HGET', m, 'fv')
    if fv then
      redis.call('HSET', m, 'v', fv)
      drop_follow(m)
    end
    if front then redis.call('HSET', m, 'fr', '1') end
    local mem = hexseq(nextseq(B)) .. id
    redis.call('HSET', m, 'mem', mem)
    redis.call('ZADD', B .. ':d', n2s(due), mem)
    kind = 'D'
  else
    back_in_line(B, id, m, now, front)
    kind = 'R'
  end
end
wake(B)
return {n2s(now), woken, {kind, snap(B, id)}}
