-- Lease the head of a user's outbox for delivery, if it is ready. The lease is the user's ready score:
-- pushed to now + lease_ms, so if this monitor dies the batch becomes ready again by itself.
-- KEYS: 1 ready, 2 outbox, 3 batches, 4 retrying.  ARGV: 1 user, 2 lease_ms, 3 lease token
-- Reply: {batch_id, body, attempt, replayed (1/0)} | false when nothing is ready for this user
assert(#KEYS == 4 and #ARGV == 3, 'claim: 4 keys, 3 arguments')
local user, lease, token = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local now = now_ms()
local ready_at = tonumber(redis.call('ZSCORE', KEYS[1], user))
if not ready_at or ready_at > now then
  return false
end
redis.call('ZREM', KEYS[4], user) -- no longer waiting for a retry (a freeing write: see seal() in _lib.lua)
local batch_id = redis.call('LINDEX', KEYS[2], 0)
local body = batch_id and redis.call('HGET', KEYS[3], batch_id)
if not body then
  if batch_id then -- an id without a body has nothing to deliver: drop it so the batches behind move up
    redis.call('LPOP', KEYS[2])
    redis.call('HDEL', KEYS[3], 'a:' .. batch_id, 's:' .. batch_id, 'e:' .. batch_id, 'r:' .. batch_id,
      'n:' .. batch_id, 'w:' .. batch_id, 'lease')
  end
  if redis.call('LLEN', KEYS[2]) == 0 then
    redis.call('ZREM', KEYS[1], user)
    redis.call('DEL', KEYS[3])
  end
  return false
end
redis.call('HDEL', KEYS[3], 'lease') -- first a write that frees memory: see seal() in _lib.lua
local attempt = redis.call('HINCRBY', KEYS[3], 'a:' .. batch_id, 1)
redis.call('HSET', KEYS[3], 'lease', token)
redis.call('ZADD', KEYS[1], now + lease, user)
return {batch_id, body, attempt, redis.call('HEXISTS', KEYS[3], 'r:' .. batch_id)}
