-- The user is typing: push the open batch's deadline to now + ttl, never past max_wait, never earlier.
-- KEYS: 1 meta, 2 timer, 3 due.  ARGV: 1 user, 2 ttl_ms
-- Reply: {0, 0} no open batch | {1, deadline_ms}
assert(#KEYS == 3 and #ARGV == 2, 'typing: 3 keys, 2 arguments')
local user, ttl = ARGV[1], tonumber(ARGV[2])
local deadline = tonumber(redis.call('ZSCORE', KEYS[3], user))
if not deadline or redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, 0}
end
local now = now_ms()
local wanted, reason = now + ttl, 'ttl'
local max_deadline = tonumber(redis.call('HGET', KEYS[1], 'max_deadline') or '0')
if max_deadline > 0 and wanted >= max_deadline then
  wanted, reason = max_deadline, 'max_wait'
end
if wanted > deadline and wanted > now then
  deadline = wanted
  redis.call('ZADD', KEYS[3], deadline, user)
  redis.call('SET', KEYS[2], '1', 'PX', deadline - now)
  redis.call('HSET', KEYS[1], 'reason', reason)
end
return {1, deadline}
