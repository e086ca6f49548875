-- renew: ARGV[4] id, ARGV[5] token, ARGV[6] seconds.
local B = KEYS[1]
local now = clock(ARGV[1])
local woken = normalize(B, now)
local id = ARGV[4]
local lost = not_held(B, id, ARGV[5], now)
if lost then return lost end
local m = M(B, id)
local exp = now + tonumber(ARGV[6])
local mem = hexseq(nextseq(B)) .. id
redis.call('ZREM', B .. ':l', redis.call('HGET', m, 'mem'))
redis.call('ZADD', B .. ':l', n2s(exp), mem)
redis.call('HSET', m, 'e', n2s(exp), 'mem', mem)
return {n2s(now), woken, snap(B, id)}
