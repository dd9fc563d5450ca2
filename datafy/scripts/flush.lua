-- Seal a user's open batch into the outbox: when its deadline has passed (ARGV[3] == ''), or at once
-- with the given reason ('manual'). A newer message may have moved the deadline: then nothing happens. While
-- the chat waits for the verdict on its last batch (await_answer), a due batch waits too: it is sealed when the
-- verdict comes (answer.lua) or the wait runs out (here, with reason answer_timeout).
-- KEYS: the user's keys (see _lib.lua).  ARGV: 1 user, 2 user_json, 3 reason, 4 batch_id, 5 seq_ttl_s
-- Reply: {1, sequence, count, reason} sealed | {0, deadline_ms} not due yet (or held) | {0, 0} nothing open
assert(#KEYS == 11 and #ARGV == 5, 'flush: 11 keys, 5 arguments')
local user, user_json, reason, batch_id, seq_ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local now = now_ms()
if reason == '' then
  local deadline = tonumber(redis.call('ZSCORE', KEYS[7], user))
  if not deadline then
    return {0, 0}
  end
  if deadline > now then
    return {0, deadline}
  end
  local held = redis.call('PTTL', KEYS[10])
  if held > 0 then
    if redis.call('HSETNX', KEYS[2], 'held', '1') == 1 then
      redis.call('HSET', KEYS[2], 'held_due', deadline)
    end
    redis.call('ZADD', KEYS[7], now + held, user)
    return {0, now + held}
  end
  if redis.call('HGET', KEYS[2], 'held') == '1' then
    reason = 'answer_timeout'
  else
    reason = redis.call('HGET', KEYS[2], 'reason') or 'ttl'
  end
end
local sealed = seal(user, user_json, batch_id, reason, now, seq_ttl)
if not sealed then
  return {0, 0}
end
return {1, sealed[1], sealed[2], reason}
