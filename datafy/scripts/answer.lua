-- The workflow's verdict on a delivered batch: answered, or unanswered (its messages go back to the front of the
-- chat's buffer, before anything that came later, and the next batch carries them: the carry-over). Idempotent:
-- a second call changes nothing, and one script means a racing flush sees the messages in the buffer or not at all.
-- KEYS: the user's keys (see _lib.lua), then 10 answer (the batch's record)
-- ARGV: 1 user, 2 batch_id, 3 verdict (answered | unanswered), 4 ttl_ms (for a chat with nothing pending),
--       5 first_ms of the batch, 6 item count N, 7.. 6+N the items as stored ("[received_ms,{item}]"), then
--       metadata name/value pairs (merged under the newer messages' own)
-- Reply: {'unknown'} | {'conflict', state} | {'same', state} | {'answered'}
--      | {'carried', messages carried, messages now open, deadline_ms}
assert(#KEYS == 10 and #ARGV >= 6, 'answer: 10 keys, 6 arguments and more')
local user, batch_id, verdict, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local state = redis.call('HGET', KEYS[10], 'state')
if not state then
  return {'unknown'}
end
if state == verdict then
  return {'same', state}
end
if state ~= 'delivered' then
  return {'conflict', state}
end
redis.call('HSET', KEYS[10], 'state', verdict)
if verdict == 'answered' then
  return {'answered'}
end
local first, n = tonumber(ARGV[5]), tonumber(ARGV[6])
local now = now_ms()
if n > 0 then
  local items, bytes = {}, 0
  for i = 6 + n, 7, -1 do -- LPUSH puts each at the head: push the last first, so the first ends first
    items[#items + 1] = ARGV[i]
    bytes = bytes + #ARGV[i]
  end
  redis.call('LPUSH', KEYS[1], unpack(items))
  local open = redis.call('HMGET', KEYS[2], 'count', 'first_ms', 'carried')
  local count = redis.call('HINCRBY', KEYS[2], 'count', n)
  redis.call('HINCRBY', KEYS[2], 'bytes', bytes)
  local carried = open[3] and (string.sub(open[3], 1, -2) .. ',"' .. batch_id .. '"]') or ('["' .. batch_id .. '"]')
  redis.call('HSET', KEYS[2], 'carried', carried, 'first_ms', math.min(tonumber(open[2] or first), first))
  for i = 7 + n, #ARGV, 2 do
    redis.call('HSETNX', KEYS[2], 'm:' .. ARGV[i], ARGV[i + 1])
  end
  -- Sealed once, these messages will be sealed again: the chat's count of sealed messages gives them back.
  if tonumber(redis.call('GET', KEYS[9]) or '0') >= n then
    redis.call('DECRBY', KEYS[9], n)
  end
  local deadline = tonumber(redis.call('ZSCORE', KEYS[7], user))
  if not deadline then -- nothing was pending: a new buffer with the chat's usual ttl, from now
    deadline = now + ttl
    redis.call('HSET', KEYS[2], 'last_ms', now, 'max_deadline', 0, 'reason', 'ttl', 'ttl_ms', ttl)
    redis.call('SET', KEYS[3], '1', 'PX', ttl)
    redis.call('ZADD', KEYS[7], deadline, user)
  end
  return {'carried', n, count, deadline}
end
return {'carried', 0, 0, 0}
