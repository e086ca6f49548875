-- claim_key: lease the key's message if it is claimable now.
-- ARGV[4] lease timeout, ARGV[5] has owner, ARGV[6] owner, ARGV[7] key.
local B = KEYS[1]
local now = clock(ARGV[1])
local woken = normalize(B, now)
local out = {}
local id = redis.call('HGET', B .. ':k', ARGV[7])
if id then
  reap_one(B, id, now)
  if redis.call('ZREM', B .. ':r', id) == 1 then
    local owner = ARGV[5] == '1' and ARGV[6] or nil
    out[1] = lease(B, id, now, tonumber(ARGV[4]), owner)
  end
end
return {n2s(now), woken, out}
