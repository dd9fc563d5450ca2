-- Move a batch that cannot be delivered to the dead letters, keeping its body, attempts and last error,
-- and make the user's next batch ready. (datafy/store/dead_letters.py trims the dead letters to DEAD_LETTER_MAX overall.)
-- KEYS: 1 ready, 2 outbox, 3 batches, 4 dead, 5 dead_data
-- ARGV: 1 user, 2 user_json, 3 batch_id, 4 lease token, 5 status, 6 error_json,
--       7 reason (not_retryable, retries_exhausted or expired)
-- Reply: 1 moved | 0 lease lost
assert(#KEYS == 5 and #ARGV == 7, 'bury: 5 keys, 7 arguments')
local user, user_json, batch_id, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local status, error_json, reason = ARGV[5], ARGV[6], ARGV[7]
if redis.call('LINDEX', KEYS[2], 0) ~= batch_id or redis.call('HGET', KEYS[3], 'lease') ~= token then
  return 0
end
redis.call('HDEL', KEYS[3], 'lease') -- first a write that frees memory: see seal() in _lib.lua
local now = now_ms()
local body = redis.call('HGET', KEYS[3], batch_id)
local attempts = redis.call('HGET', KEYS[3], 'a:' .. batch_id) or '0'
redis.call('HSET', KEYS[5], batch_id, body, 'i:' .. batch_id,
  '{"user":' .. user_json .. ',"attempts":' .. attempts .. ',"last_status":' .. status
  .. ',"last_error":' .. error_json .. ',"reason":"' .. reason .. '","dead_ms":' .. now .. '}')
redis.call('ZADD', KEYS[4], now, batch_id)
redis.call('LPOP', KEYS[2])
redis.call('HDEL', KEYS[3], batch_id, 'a:' .. batch_id, 's:' .. batch_id, 'e:' .. batch_id, 'r:' .. batch_id,
  'n:' .. batch_id, 'w:' .. batch_id)
if redis.call('LLEN', KEYS[2]) > 0 then
  redis.call('ZADD', KEYS[1], now, user)
else
  redis.call('ZREM', KEYS[1], user)
  redis.call('DEL', KEYS[3])
end
return 1
