-- Append one message to a user's open batch and reset the silence timer, sealing the batch when a
-- flush condition is met. This runs once per API request, so it keeps its Redis calls few.
-- KEYS: the user's keys (see _lib.lua), then 12 the user's dedupe set (message_id -> ms first seen),
--       13 the user's rate counter (messages this minute), 14 the API key's counter in this partition,
--       15 the route's pending chats in this partition (for its max_pending_chats)
-- ARGV: 1 user, 2 user_json, 3 item_json, 4 item_bytes, 5 ttl_ms, 6 max_wait_ms (0 off),
--       7 max_messages (0 off), 8 hard_max_messages, 9 hard_max_bytes, 10 flush_reason ('' none),
--       11 message_id ('' none), 12 dedupe_window_ms, 13 batch_id, 14 seq_ttl_s,
--       15 batch_id for the batch the byte cap closes, 16 metadata_bytes (the merged metadata's share of
--       the byte cap), 17 max_pending (chats with an open or undelivered batch allowed in this partition;
--       0 off), 18 rate_per_minute (0 off), 19 key_rate_per_minute (this partition's share; 0 off),
--       20 await_ms (await_answer: how long a delivered batch holds the next one back; 0 off),
--       21 route_cap (this partition's share of the route's max_pending_chats; 0 off), 22.. metadata pairs
-- Reply: {'duplicate', count, deadline_ms (0: nothing pending)}
--      | {'buffered', count, deadline_ms} or, when the byte cap closed the open batch first,
--        {'buffered', count, deadline_ms, sealed batch_id, its sequence, its count}
--      | {'flushed', count, batch_id, sequence, now_ms, flush_reason}
--      | {'rate_limited', retry_after_ms} | {'key_rate_limited', retry_after_ms} | {'full', retry_after_ms}:
--        nothing stored (429)
assert(#KEYS == 15, 'append: 15 keys')
assert(#ARGV >= 21 and #ARGV % 2 == 1, 'append: 21 arguments plus metadata pairs')
local user, user_json, item = ARGV[1], ARGV[2], ARGV[3]
local item_bytes, ttl, max_wait = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local max_messages, hard_messages, hard_bytes = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local flush_reason, message_id, window = ARGV[10], ARGV[11], tonumber(ARGV[12])
local batch_id, seq_ttl, cap_batch_id = ARGV[13], tonumber(ARGV[14]), ARGV[15]
local meta_bytes, max_pending, rate_limit = tonumber(ARGV[16]), tonumber(ARGV[17]), tonumber(ARGV[18])
local key_rate_limit, await, route_cap = tonumber(ARGV[19]), tonumber(ARGV[20]), tonumber(ARGV[21])
local now = now_ms()

local open = redis.call('HMGET', KEYS[2], 'count', 'bytes', 'max_deadline')
local count, bytes, max_deadline = tonumber(open[1] or '0'), tonumber(open[2] or '0'), tonumber(open[3] or '0')

-- Limits first, before anything is written: a full service takes no new chats, but its chats go on. A chat
-- counts while it has an open batch (due) or a sealed one not yet delivered (ready): sealed at once (flush,
-- max_messages 1) or waiting out a receiver outage, it still holds memory.
if count == 0 and max_pending > 0 and not redis.call('ZSCORE', KEYS[8], user)
    and redis.call('ZCARD', KEYS[7]) + redis.call('ZCARD', KEYS[8]) >= max_pending then
  return {'full', 1000}
end
-- A route's own cap, within the global one. Its index is cleaned only near the cap: a chat that stopped being
-- pending (delivered, discarded) leaves no trace in the scripts that end it.
if count == 0 and route_cap > 0 and not redis.call('ZSCORE', KEYS[15], user)
    and redis.call('ZCARD', KEYS[15]) >= route_cap then
  for _, chat in ipairs(redis.call('ZRANGE', KEYS[15], 0, -1)) do
    if not redis.call('ZSCORE', KEYS[7], chat) and not redis.call('ZSCORE', KEYS[8], chat) then
      redis.call('ZREM', KEYS[15], chat)
    end
  end
  if redis.call('ZCARD', KEYS[15]) >= route_cap then
    return {'full', 1000}
  end
end
-- Fixed one-minute windows: O(1), and they expire by themselves.
local function over(key, limit)
  local sent = redis.call('INCR', key)
  if sent == 1 then
    redis.call('PEXPIRE', key, 60000)
  end
  return sent > limit
end
if key_rate_limit > 0 and over(KEYS[14], key_rate_limit) then
  return {'key_rate_limited', math.max(redis.call('PTTL', KEYS[14]), 1)}
end
if rate_limit > 0 and over(KEYS[13], rate_limit) then
  return {'rate_limited', math.max(redis.call('PTTL', KEYS[13]), 1)}
end

-- ZADD NX answers "seen before?" and remembers the id in one call; an id older than the window is new again.
if message_id ~= '' then
  if redis.call('ZADD', KEYS[12], 'NX', now, message_id) == 0 then
    if now - tonumber(redis.call('ZSCORE', KEYS[12], message_id)) < window then
      return {'duplicate', count, tonumber(redis.call('ZSCORE', KEYS[7], user) or '0')}
    end
    redis.call('ZADD', KEYS[12], now, message_id)
  end
  if count == 0 then -- once per burst, forget ids past the window
    redis.call('ZREMRANGEBYSCORE', KEYS[12], '-inf', now - window)
  end
  redis.call('PEXPIRE', KEYS[12], window)
end

-- A message that would push the open batch past the byte cap closes that batch first: never rejected.
local capped
item_bytes = item_bytes + meta_bytes -- the merged metadata is stored once more: it counts toward the cap
if count > 0 and bytes + item_bytes > hard_bytes then
  capped = seal(user, user_json, cap_batch_id, 'max_bytes', now, seq_ttl)
  count, bytes, max_deadline = 0, 0, 0
end

redis.call('RPUSH', KEYS[1], '[' .. now .. ',' .. item .. ']')
count, bytes = count + 1, bytes + item_bytes
local fields = {'last_ms', now, 'count', count, 'bytes', bytes, 'ttl_ms', ttl, 'await', await}
if count == 1 then
  max_deadline = max_wait > 0 and now + max_wait or 0
  fields[#fields + 1], fields[#fields + 2] = 'first_ms', now
  fields[#fields + 1], fields[#fields + 2] = 'max_deadline', max_deadline
  if route_cap > 0 then
    redis.call('ZADD', KEYS[15], now, user)
  end
end
for i = 22, #ARGV, 2 do
  fields[#fields + 1], fields[#fields + 2] = 'm:' .. ARGV[i], ARGV[i + 1]
end

if flush_reason == '' and ((max_messages > 0 and count >= max_messages) or count >= hard_messages) then
  flush_reason = 'max_messages'
end
local deadline, reason = now + ttl, 'ttl'
if max_deadline > 0 and deadline >= max_deadline then
  deadline, reason = max_deadline, 'max_wait'
  if deadline <= now and flush_reason == '' then
    flush_reason = 'max_wait'
  end
end
fields[#fields + 1], fields[#fields + 2] = 'reason', reason
redis.call('HSET', KEYS[2], unpack(fields))

if flush_reason ~= '' then
  local held = redis.call('PTTL', KEYS[10])
  if held > 0 and count < hard_messages then -- the chat waits for the verdict on its last batch: sealed then
    if redis.call('HSETNX', KEYS[2], 'held', '1') == 1 then
      redis.call('HSET', KEYS[2], 'held_due', now)
    end
    redis.call('HSET', KEYS[2], 'reason', flush_reason)
    redis.call('SET', KEYS[3], '1', 'PX', held)
    redis.call('ZADD', KEYS[7], now + held, user)
    return {'buffered', count, now + held}
  end
  local sealed = seal(user, user_json, batch_id, flush_reason, now, seq_ttl)
  return {'flushed', sealed[2], batch_id, sealed[1], now, flush_reason}
end
redis.call('SET', KEYS[3], '1', 'PX', deadline - now)
redis.call('ZADD', KEYS[7], deadline, user)
if capped then
  return {'buffered', count, deadline, cap_batch_id, capped[1], capped[2]}
end
return {'buffered', count, deadline}
