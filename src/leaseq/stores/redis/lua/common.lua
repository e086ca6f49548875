-- Shared by every leaseq script (prepended by the loader). Key layout of a queue
-- whose base key is B = <prefix>{<queue>} (one hash tag: one cluster slot):
--   B:k hash key -> id of the live message      B:m:<id> hash: one message
--   B:r zset ready (score: priority, band, seq)  B:d zset delayed (due; member seq..id)
--   B:l zset leases (expiry; member seq..id)     B:x zset dead (death time; seq..id)
--   B:s counter (INCR: order, ids, fencing tokens)  B:o hash / B:oe zset: outcomes
-- ARGV[1] is the caller's clock ('' = the server's TIME), ARGV[2] the wake-up
-- channel, ARGV[3] this store's origin tag (its own subscriber ignores it).
local S = 2199023255552 -- 2^41: seq space per band; 4002 bands * 2^41 < 2^53
local BOUND = 1000 -- timers applied per call: reclaiming is lazy and bounded
local SEP, FS = '\30', '\31'
local HISTORY_LIMIT = 16

local function n2s(x) return string.format('%.17g', x) end

local function clock(arg)
  if arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function nextseq(B) return redis.call('INCR', B .. ':s') end
local function hexseq(seq) return string.format('%012x', seq) end
local function M(B, id) return B .. ':m:' .. id end

-- Head (band 0) is a stack: a later seq sorts first. The line (band 1) is FIFO.
local function rscore(p, front, seq)
  if front then return n2s((2000 - 2 * p) * S + (S - 1 - seq)) end
  return n2s((2001 - 2 * p) * S + seq)
end

local function event(m, at, kind, detail)
  local e = n2s(at) .. FS .. kind
  if detail then e = e .. FS .. detail end
  local h = redis.call('HGET', m, 'h')
  if not h or h == '' then
    h = e
  else
    local _, n = string.gsub(h, SEP, '')
    if n + 1 >= HISTORY_LIMIT then h = string.sub(h, string.find(h, SEP, 1, true) + 1) end
    h = h .. SEP .. e
  end
  redis.call('HSET', m, 'h', h)
end

local FIELDS = {'key', 'v', 'p', 'st', 'a', 'c', 'av', 'e', 'by', 'err', 'h', 'ma'}
local function snap(B, id)
  local r = redis.call('HMGET', M(B, id), unpack(FIELDS))
  table.insert(r, 1, id)
  return r
end

local function enqueue(B, id, m, front)
  local p = tonumber(redis.call('HGET', m, 'p'))
  redis.call('ZADD', B .. ':r', rscore(p, front, nextseq(B)), id)
end

local function drop_follow(m)
  redis.call('HDEL', m, 'fid', 'fv', 'fp', 'fd', 'fat', 'fma')
end

-- A held message returns (release or expiry); a buffered follow-up's value wins.
local function back_in_line(B, id, m, at, front)
  redis.call('HSET', m, 'st', 'r', 'av', n2s(at))
  redis.call('HDEL', m, 'e', 'mem')
  local fv = redis.call('HGET', m, 'fv')
  if fv then
    redis.call('HSET', m, 'v', fv)
    drop_follow(m)
  end
  enqueue(B, id, m, front)
end

-- A new live message (put, replace, or a buffered follow-up made live by ack).
-- Returns 'R' when it is claimable now, 'D' when delayed.
local function insert_msg(B, seq, id, key, v, p, avail, ma, now)
  local m = M(B, id)
  redis.call('HSET', m, 'key', key, 'v', v, 'p', p, 'st', 'r', 'a', 0, 'c', n2s(now),
    'av', n2s(avail))
  if ma and ma ~= '' then redis.call('HSET', m, 'ma', ma) end
  redis.call('HSET', B .. ':k', key, id)
  if avail <= now then
    redis.call('ZADD', B .. ':r', rscore(tonumber(p), false, seq), id)
    return 'R'
  end
  local mem = hexseq(seq) .. id
  redis.call('HSET', m, 'mem', mem)
  redis.call('ZADD', B .. ':d', n2s(avail), mem)
  return 'D'
end

local function avail_of(now, delay, at)
  if at and at ~= '' then return tonumber(at) end
  if delay > 0 then return now + delay end
  return now
end

-- Move to DEAD. A buffered follow-up is news the producer wants delivered: it
-- becomes a fresh message of the key (its own id, no attempts). Returns its
-- insert_msg kind ('R'/'D'), or nil when there was none.
local function kill(B, id, m, at, reason)
  local seq = nextseq(B)
  local mem = hexseq(seq) .. id
  redis.call('HSET', m, 'st', 'x', 'da', n2s(at), 'mem', mem)
  redis.call('HDEL', m, 'e')
  if not redis.call('HGET', m, 'err') then redis.call('HSET', m, 'err', reason) end
  event(m, at, 'dead', reason)
  local key = redis.call('HGET', m, 'key')
  redis.call('HDEL', B .. ':k', key)
  redis.call('ZADD', B .. ':x', n2s(at), mem)
  local f = redis.call('HMGET', m, 'fid', 'fv', 'fp', 'fd', 'fat', 'fma')
  if not f[1] then return nil end
  drop_follow(m)
  local avail = avail_of(at, tonumber(f[4]), f[5])
  return insert_msg(B, nextseq(B), f[1], key, f[2], f[3], avail, f[6], at)
end

local function exhausted(m)
  local ma = redis.call('HGET', m, 'ma')
  return ma and tonumber(redis.call('HGET', m, 'a')) >= tonumber(ma)
end

-- A lease expired at `due` (its token stays: the holder learns "expired").
-- Returns true when the key has a claimable message again (it, or its follow-up).
local function expire(B, id, due)
  local m = M(B, id)
  redis.call('HDEL', m, 'by')
  if exhausted(m) then
    return kill(B, id, m, due, 'lease_expired') == 'R'
  end
  event(m, due, 'expired')
  back_in_line(B, id, m, due, true)
  return true
end

local function promote(B, id)
  local m = M(B, id)
  local front = redis.call('HGET', m, 'fr') == '1'
  redis.call('HDEL', m, 'mem', 'fr')
  enqueue(B, id, m, front)
end

-- Apply due timers (delays falling due, leases expiring) in (time, seq) order, as
-- many as BOUND per call. Returns the keys that became claimable.
local function normalize(B, now)
  local woken = {}
  local ns = n2s(now)
  local d = redis.call('ZRANGEBYSCORE', B .. ':d', '-inf', ns, 'WITHSCORES', 'LIMIT', 0, BOUND)
  local l = redis.call('ZRANGEBYSCORE', B .. ':l', '-inf', ns, 'WITHSCORES', 'LIMIT', 0, BOUND)
  if #d == 0 and #l == 0 then return woken end
  local i, j = 1, 1
  while i <= #d or j <= #l do
    local take_d
    if i > #d then take_d = false
    elseif j > #l then take_d = true
    else
      local sd, sl = tonumber(d[i + 1]), tonumber(l[j + 1])
      take_d = sd < sl or (sd == sl and d[i] < l[j])
    end
    if take_d then
      local mem = d[i]
      local id = string.sub(mem, 13)
      redis.call('ZREM', B .. ':d', mem)
      promote(B, id)
      woken[#woken + 1] = redis.call('HGET', M(B, id), 'key')
      i = i + 2
    else
      local mem = l[j]
      local id = string.sub(mem, 13)
      redis.call('ZREM', B .. ':l', mem)
      redis.call('HDEL', M(B, id), 'mem')
      if expire(B, id, tonumber(l[j + 1])) then
        woken[#woken + 1] = redis.call('HGET', M(B, id), 'key')
      end
      j = j + 2
    end
  end
  return woken
end

-- One message's expired lease written now (when normalize's bound left it behind).
local function reap_one(B, id, now)
  local m = M(B, id)
  local e = redis.call('HGET', m, 'e')
  if redis.call('HGET', m, 'st') ~= 'l' or tonumber(e) > now then return end
  redis.call('ZREM', B .. ':l', redis.call('HGET', m, 'mem'))
  redis.call('HDEL', m, 'mem')
  expire(B, id, tonumber(e))
end

-- Fencing: nil when `token` holds message `id` at `now`, else the facts for LeaseLost.
local function not_held(B, id, token, now)
  local m = M(B, id)
  local r = redis.call('HMGET', m, 'st', 't', 'e')
  if not r[1] then return {'L', 0, false, false, false, n2s(now)} end
  if r[1] == 'l' and r[2] == token and tonumber(r[3]) > now then return nil end
  return {'L', 1, r[1], r[2], r[3], n2s(now)}
end

local function lease(B, id, now, timeout, owner)
  local m = M(B, id)
  local seq = nextseq(B)
  local attempts = redis.call('HINCRBY', m, 'a', 1)
  local exp = now + timeout
  local mem = hexseq(seq) .. id
  redis.call('HSET', m, 'st', 'l', 't', tostring(seq), 'la', n2s(now), 'e', n2s(exp), 'mem', mem)
  if owner then redis.call('HSET', m, 'by', owner) else redis.call('HDEL', m, 'by') end
  if attempts > 1 then event(m, now, 'claimed', owner) end
  redis.call('ZADD', B .. ':l', n2s(exp), mem)
  local r = snap(B, id)
  r[#r + 1] = tostring(seq)
  return r
end

local function wake(B) redis.call('PUBLISH', ARGV[2], ARGV[3] .. ' ' .. B) end

