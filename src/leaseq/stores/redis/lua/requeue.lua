-- requeue_dead: ARGV[4] id, ARGV[5] delay, ARGV[6] reset attempts.
local B = KEYS[1]
local now = clock(ARGV[1])
local woken = normalize(B, now)
local id = ARGV[4]
local m = M(B, id)
local r = redis.call('HMGET', m, 'st', 'key', 'mem')
if r[1] ~= 'x' then return {'E', 'NotFound'} end
if redis.call('HEXISTS', B .. ':k', r[2]) == 1 then return {'E', 'KeyExists', r[2]} end
redis.call('ZREM', B .. ':x', r[3])
redis.call('HSET', B .. ':k', r[2], id)
redis.call('HSET', m, 'st', 'r')
redis.call('HDEL', m, 'da', 'mem', 'fr')
if ARGV[6] == '1' then redis.call('HSET', m, 'a', 0) end
event(m, now, 'requeued')
local delay = tonumber(ARGV[5])
local avail = now + delay
redis.call('HSET', m, 'av', n2s(avail))
local kind = 'R'
if delay > 0 then
  local mem = hexseq(nextseq(B)) .. id
  redis.call('HSET', m, 'mem', mem)
  redis.call('ZADD', B .. ':d', n2s(avail), mem)
  kind = 'D'
else
  enqueue(B, id, m, false)
end
wake(B)
return {n2s(now), woken, {kind, snap(B, id)}}
