-- Append one message to a user's open batch and reset the silence timer, sealing the batch when a
-- flush condition is met. KEYS: the user's keys (see _lib.lua).
-- ARGV: 1 user, 2 user_json, 3 item_json, 4 item_bytes, 5 ttl_ms, 6 max_wait_ms (0 off),
--       7 max_messages (0 off), 8 hard_max_messages, 9 hard_max_bytes, 10 flush_reason ('' none),
--       11 message_id ('' none), 12 dedupe_window_ms, 13 batch_id, 14 seq_ttl_s, 15.. metadata name/value pairs
-- Reply: {'duplicate', count, deadline_ms} | {'buffered', count, deadline_ms} | {'flushed', count, batch_id, sequence}
assert(#KEYS == 9, 'append: 9 keys')
assert(#ARGV >= 14 and #ARGV % 2 == 0, 'append: 14 arguments plus metadata pairs')
local user, user_json, item = ARGV[1], ARGV[2], ARGV[3]
local item_bytes, ttl, max_wait = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local max_messages, hard_messages, hard_bytes = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local flush_reason, message_id, window = ARGV[10], ARGV[11], tonumber(ARGV[12])
local batch_id, seq_ttl = ARGV[13], tonumber(ARGV[14])
local now = now_ms()

if message_id ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - window)
  if redis.call('ZSCORE', KEYS[4], message_id) then
    local count = tonumber(redis.call('HGET', KEYS[2], 'count') or '0')
    return {'duplicate', count, tonumber(redis.call('ZSCORE', KEYS[8], user) or '0')}
  end
  redis.call('ZADD', KEYS[4], now, message_id)
  redis.call('PEXPIRE', KEYS[4], window)
end

-- A message that would push the open batch past the byte cap closes that batch first: never rejected.
local open_bytes = tonumber(redis.call('HGET', KEYS[2], 'bytes') or '0')
if open_bytes > 0 and open_bytes + item_bytes > hard_bytes then
  seal(user, user_json, 'x' .. batch_id, 'max_bytes', now, seq_ttl)
end

redis.call('RPUSH', KEYS[1], '[' .. now .. ',' .. item .. ']')
if redis.call('HSETNX', KEYS[2], 'first_ms', now) == 1 then
  redis.call('HSET', KEYS[2], 'max_deadline', max_wait > 0 and now + max_wait or 0)
end
redis.call('HSET', KEYS[2], 'last_ms', now)
local count = redis.call('HINCRBY', KEYS[2], 'count', 1)
redis.call('HINCRBY', KEYS[2], 'bytes', item_bytes)
for i = 15, #ARGV, 2 do
  redis.call('HSET', KEYS[2], 'm:' .. ARGV[i], ARGV[i + 1])
end

if flush_reason == '' then
  if max_messages > 0 and count >= max_messages then
    flush_reason = 'max_messages'
  elseif count >= hard_messages then
    flush_reason = 'max_messages'
  end
end
local deadline, reason = now + ttl, 'ttl'
local max_deadline = tonumber(redis.call('HGET', KEYS[2], 'max_deadline'))
if max_deadline > 0 and deadline >= max_deadline then
  deadline, reason = max_deadline, 'max_wait'
  if deadline <= now and flush_reason == '' then
    flush_reason = 'max_wait'
  end
end

if flush_reason ~= '' then
  local sealed = seal(user, user_json, batch_id, flush_reason, now, seq_ttl)
  return {'flushed', sealed[2], batch_id, sealed[1]}
end
redis.call('HSET', KEYS[2], 'reason', reason)
redis.call('SET', KEYS[3], '1', 'PX', deadline - now)
redis.call('ZADD', KEYS[8], deadline, user)
return {'buffered', count, deadline}
