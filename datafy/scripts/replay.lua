-- Put a dead letter back at the end of its user's outbox, under the same batch_id, with fresh attempts.
-- A replayed batch is marked (r:<batch_id>): an operator asked for it, so MAX_BATCH_AGE no longer applies.
-- KEYS: 1 ready, 2 outbox, 3 batches, 4 dead, 5 dead_data.  ARGV: 1 user, 2 batch_id
-- Reply: 1 replayed | 0 no such dead letter
assert(#KEYS == 5 and #ARGV == 2, 'replay: 5 keys, 2 arguments')
local user, batch_id = ARGV[1], ARGV[2]
local body = redis.call('HGET', KEYS[5], batch_id)
if not body then
  return 0
end
redis.call('HDEL', KEYS[5], batch_id, 'i:' .. batch_id)
if redis.call('HEXISTS', KEYS[3], batch_id) == 1 then -- already queued: never queue one batch twice
  redis.call('ZREM', KEYS[4], batch_id)
  return 1
end
redis.call('HSET', KEYS[3], batch_id, body, 'r:' .. batch_id, '1')
redis.call('RPUSH', KEYS[2], batch_id)
redis.call('ZADD', KEYS[1], 'NX', now_ms(), user)
redis.call('ZREM', KEYS[4], batch_id)
return 1
