-- ack and dead_letter: the held message leaves (deleted, or DEAD) and, with an
-- outcome, the ledger records it in the same step.
-- ARGV[4] 'ack'|'dead', ARGV[5] id, ARGV[6] token, ARGV[7] has error, ARGV[8] error,
-- ARGV[9] has outcome, ARGV[10] outcome key, ARGV[11] outcome blob, ARGV[12] expires_at.
local B = KEYS[1]
local now = clock(ARGV[1])
local woken = normalize(B, now)
local id = ARGV[5]
local lost = not_held(B, id, ARGV[6], now)
if lost then return lost end
local m = M(B, id)
redis.call('ZREM', B .. ':l', redis.call('HGET', m, 'mem'))
local result
if ARGV[4] == 'ack' then
  local r = redis.call('HMGET', m, 'key', 'fid', 'fv', 'fp', 'fd', 'fat', 'fma')
  redis.call('HDEL', B .. ':k', r[1])
  redis.call('DEL', m)
  result = {'S'}
  if r[2] then
    local seq = nextseq(B)
    local avail = avail_of(now, tonumber(r[5]), r[6])
    local kind = insert_msg(B, seq, r[2], r[1], r[3], r[4], avail, r[7], now)
    result = {kind, r[1], n2s(avail)}
  end
else
  redis.call('HDEL', m, 'by', 't', 'mem')
  local reason = 'dead_lettered'
  if ARGV[7] == '1' then
    redis.call('HSET', m, 'err', ARGV[8])
    reason = ARGV[8]
  end
  local follow = kill(B, id, m, now, reason)
  result = {'X' .. (follow or ''), snap(B, id)}
end
if ARGV[9] == '1' then
  redis.call('HSET', B .. ':o', ARGV[10], ARGV[11])
  if ARGV[12] ~= '' then redis.call('ZADD', B .. ':oe', ARGV[12], ARGV[10])
  else redis.call('ZREM', B .. ':oe', ARGV[10]) end
end
wake(B)
return {n2s(now), woken, result}
