-- claim: lease up to ARGV[7] messages in delivery order.
-- ARGV[4] lease timeout, ARGV[5] has owner, ARGV[6] owner, ARGV[7] limit.
local B = KEYS[1]
local now = clock(ARGV[1])
local woken = normalize(B, now)
local owner = ARGV[5] == '1' and ARGV[6] or nil
local timeout = tonumber(ARGV[4])
local out = {}
local popped = redis.call('ZPOPMIN', B .. ':r', tonumber(ARGV[7]))
for i = 1, #popped, 2 do out[#out + 1] = lease(B, popped[i], now, timeout, owner) end
return {n2s(now), woken, out}
