-- A batch was delivered (2xx): remove it and make the user's next batch ready.
-- Any monitor's 2xx counts, even after its lease passed to another: the batch was delivered.
-- KEYS: 1 ready, 2 outbox, 3 batches, 4 retrying.  ARGV: 1 user, 2 batch_id
-- Reply: 1 removed | 0 it was no longer at the head (already acknowledged)
assert(#KEYS == 4 and #ARGV == 2, 'ack: 4 keys, 2 arguments')
local user, batch_id = ARGV[1], ARGV[2]
if redis.call('LINDEX', KEYS[2], 0) ~= batch_id then
  return 0
end
redis.call('LPOP', KEYS[2])
redis.call('ZREM', KEYS[4], user)
redis.call('HDEL', KEYS[3], batch_id, 'a:' .. batch_id, 's:' .. batch_id, 'e:' .. batch_id, 'r:' .. batch_id, 'lease')
if redis.call('LLEN', KEYS[2]) > 0 then
  redis.call('ZADD', KEYS[1], now_ms(), user)
else
  redis.call('ZREM', KEYS[1], user)
  redis.call('DEL', KEYS[3])
end
return 1
