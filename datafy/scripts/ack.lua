-- A batch was delivered (2xx): remove it and make the user's next batch ready. With an answer window, the
-- delivered batch stays readable for that long (the answer guard and the carry-over read it).
-- Any monitor's 2xx counts, even after its lease passed to another: the batch was delivered.
-- With await_answer, the chat's next batch then waits for the workflow's verdict (a hold, ANSWER_TIMEOUT long).
-- KEYS: 1 ready, 2 outbox, 3 batches, 4 retrying, 5 answer (this batch's record), 6 hold, 7 held (index)
-- ARGV: 1 user, 2 batch_id, 3 answer_window_ms (0: keep nothing), 4 lease token of the attempt
-- Reply: 1 removed | 2 removed, but another process had leased it since (this one stalled past its lease, so the
-- receiver may get it twice) | 0 it was no longer at the head (already acknowledged)
assert(#KEYS == 7 and #ARGV == 4, 'ack: 7 keys, 4 arguments')
local user, batch_id, window = ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('LINDEX', KEYS[2], 0) ~= batch_id then
  return 0
end
local reply = redis.call('HGET', KEYS[3], 'lease') == ARGV[4] and 1 or 2
redis.call('LPOP', KEYS[2])
redis.call('ZREM', KEYS[4], user)
local wait = tonumber(redis.call('HGET', KEYS[3], 'w:' .. batch_id) or '0')
if wait > 0 then
  local now = now_ms()
  redis.call('SET', KEYS[6], batch_id, 'PX', wait)
  redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', now) -- holds that ran out
  redis.call('ZADD', KEYS[7], now + wait, user)
end
if window > 0 then
  local kept = redis.call('HMGET', KEYS[3], batch_id, 'n:' .. batch_id)
  if kept[1] then
    redis.call('HSET', KEYS[5], 'state', 'delivered', 'body', kept[1], 'n', kept[2] or '')
    redis.call('PEXPIRE', KEYS[5], window)
  end
end
redis.call('HDEL', KEYS[3], batch_id, 'a:' .. batch_id, 's:' .. batch_id, 'e:' .. batch_id, 'r:' .. batch_id,
  'n:' .. batch_id, 'w:' .. batch_id, 'lease')
if redis.call('LLEN', KEYS[2]) > 0 then
  redis.call('ZADD', KEYS[1], now_ms() + wait, user)
else
  redis.call('ZREM', KEYS[1], user)
  redis.call('DEL', KEYS[3])
end
return reply
