-- The user is typing: push the open batch's deadline to now + ttl, never past max_wait, never earlier, and
-- never more than max_extension past the last message (typing alone cannot hold a chat back for long).
-- KEYS: 1 meta, 2 timer, 3 due.  ARGV: 1 user, 2 ttl_ms, 3 max_extension_ms (0: no bound)
-- Reply: {0, 0} no open batch | {1, deadline_ms}
assert(#KEYS == 3 and #ARGV == 3, 'typing: 3 keys, 3 arguments')
local user, ttl, max_extension = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local deadline = tonumber(redis.call('ZSCORE', KEYS[3], user))
if not deadline or redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, 0}
end
local now = now_ms()
local wanted, reason = now + ttl, 'ttl'
local open = redis.call('HMGET', KEYS[1], 'max_deadline', 'last_ms')
local max_deadline, last = tonumber(open[1] or '0'), tonumber(open[2] or now)
if max_extension > 0 then
  wanted = math.min(wanted, last + max_extension)
end
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
