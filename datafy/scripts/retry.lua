-- A delivery attempt failed and will be retried: record why and schedule the next attempt.
-- Only the lease holder may reschedule; a stale holder's verdict is ignored. An attempt made while the
-- receiver's breaker was open does not count toward the batch's dead-lettering (counted = 0).
-- KEYS: 1 ready, 2 outbox, 3 batches, 4 retrying
-- ARGV: 1 user, 2 batch_id, 3 lease token, 4 delay_ms, 5 status, 6 error, 7 counted (1/0)
-- Reply: 1 scheduled | 0 lease lost
assert(#KEYS == 4 and #ARGV == 7, 'retry: 4 keys, 7 arguments')
local user, batch_id, token = ARGV[1], ARGV[2], ARGV[3]
if redis.call('LINDEX', KEYS[2], 0) ~= batch_id or redis.call('HGET', KEYS[3], 'lease') ~= token then
  return 0
end
redis.call('HDEL', KEYS[3], 'lease') -- first a write that frees memory: see seal() in _lib.lua
local now = now_ms()
redis.call('HSET', KEYS[3], 's:' .. batch_id, ARGV[5], 'e:' .. batch_id, ARGV[6])
if ARGV[7] == '0' then
  redis.call('HINCRBY', KEYS[3], 'a:' .. batch_id, -1)
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), user)
redis.call('ZADD', KEYS[4], 'NX', now, user) -- when its wait began: the catch-up order after an outage
return 1
