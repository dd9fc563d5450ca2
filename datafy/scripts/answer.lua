-- The workflow's verdict on a delivered batch: answered, or unanswered (its messages go back to the front of the
-- chat's buffer, before anything that came later, and the next batch carries them: the carry-over). If the chat
-- was waiting for this verdict (await_answer), the wait ends: a batch whose deadline passed meanwhile is sealed
-- now, the verdict its flush_reason. Idempotent: a second call changes nothing, and one script means a racing
-- flush sees the messages in the buffer or not at all.
-- KEYS: the user's keys (see _lib.lua), then 12 answer (the batch's record), 13 held (index)
-- ARGV: 1 user, 2 user_json, 3 batch_id, 4 verdict (answered | unanswered), 5 new batch_id (for a release),
--       6 seq_ttl_s, 7 ttl_ms (for a chat with nothing pending), 8 first_ms of the batch, 9 item count N,
--       10.. 9+N the items as stored ("[received_ms,{item}]"), then metadata name/value pairs (merged under the
--       newer messages' own)
-- Reply: {'unknown'} | {'conflict', state} | {'same', state}
--      | {outcome ('answered' | 'carried'), messages carried, deadline_ms of the open batch (0: none),
--         released (1: the chat was waiting for this verdict), sealed batch_id ('' none)}
assert(#KEYS == 13 and #ARGV >= 9, 'answer: 13 keys, 9 arguments and more')
local user, user_json, batch_id, verdict = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local new_batch_id, seq_ttl, ttl = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local state = redis.call('HGET', KEYS[12], 'state')
if not state then
  return {'unknown'}
end
if state == verdict then
  return {'same', state}
end
if state ~= 'delivered' then
  return {'conflict', state}
end
redis.call('HSET', KEYS[12], 'state', verdict)
local now = now_ms()
local first, n = tonumber(ARGV[8]), tonumber(ARGV[9])
if verdict == 'unanswered' and n > 0 then
  local items, bytes = {}, 0
  for i = 9 + n, 10, -1 do -- LPUSH puts each at the head: push the last first, so the first ends first
    items[#items + 1] = ARGV[i]
    bytes = bytes + #ARGV[i]
  end
  redis.call('LPUSH', KEYS[1], unpack(items))
  local open = redis.call('HMGET', KEYS[2], 'first_ms', 'carried')
  redis.call('HINCRBY', KEYS[2], 'count', n)
  redis.call('HINCRBY', KEYS[2], 'bytes', bytes)
  local carried = open[2] and (string.sub(open[2], 1, -2) .. ',"' .. batch_id .. '"]') or ('["' .. batch_id .. '"]')
  redis.call('HSET', KEYS[2], 'carried', carried, 'first_ms', math.min(tonumber(open[1] or first), first))
  for i = 10 + n, #ARGV, 2 do
    redis.call('HSETNX', KEYS[2], 'm:' .. ARGV[i], ARGV[i + 1])
  end
  -- Sealed once, these messages will be sealed again: the chat's count of sealed messages gives them back.
  if tonumber(redis.call('GET', KEYS[9]) or '0') >= n then
    redis.call('DECRBY', KEYS[9], n)
  end
  if not redis.call('ZSCORE', KEYS[7], user) then -- nothing was pending: a new buffer, the chat's usual ttl
    redis.call('HSET', KEYS[2], 'last_ms', now, 'max_deadline', 0, 'reason', 'ttl', 'ttl_ms', ttl)
    redis.call('SET', KEYS[3], '1', 'PX', ttl)
    redis.call('ZADD', KEYS[7], now + ttl, user)
  end
end
local released, sealed_id = 0, ''
if redis.call('GET', KEYS[10]) == batch_id then -- the chat was waiting for this verdict: the wait ends
  released = 1
  redis.call('DEL', KEYS[10])
  redis.call('ZREM', KEYS[13], user)
  if redis.call('LLEN', KEYS[5]) > 0 then -- a batch sealed meanwhile (never leased while held) goes now
    redis.call('ZADD', KEYS[8], now, user)
  end
  -- A batch held back is one whose deadline passed during the wait (flush.lua), or that asked to go at once
  -- (append.lua): it leaves now.
  if redis.call('HGET', KEYS[2], 'held') == '1' and seal(user, user_json, new_batch_id, verdict, now, seq_ttl) then
    sealed_id = new_batch_id
  end
end
local deadline = tonumber(redis.call('ZSCORE', KEYS[7], user) or '0')
return {verdict == 'answered' and 'answered' or 'carried', verdict == 'unanswered' and n or 0, deadline, released,
  sealed_id}
