-- Where one batch of a chat is, for the answer guard, and how many messages the chat had acknowledged since it
-- was sealed: O(1), every read on the chat's own slot.
-- KEYS: 1 answer (the batch's record once delivered), 2 batches, 3 outbox, 4 ready, 5 dead_data, 6 sealed, 7 meta
-- ARGV: 1 batch_id, 2 user
-- Reply: false (unknown here) | {state, 'sequence:through' ('' when not recorded), messages sealed so far,
--        messages in the open batch, body ('' unless needed for the sequence), dead letter info ('' unless dead)}
-- state: pending | delivering (leased now) | delivered | answered | unanswered | dead_letter
assert(#KEYS == 7 and #ARGV == 2, 'answer_state: 7 keys, 2 arguments')
local batch_id, user = ARGV[1], ARGV[2]
local sealed = redis.call('GET', KEYS[6]) or '0'
local open = redis.call('HGET', KEYS[7], 'count') or '0'
local record = redis.call('HMGET', KEYS[1], 'state', 'n')
if record[1] then
  return {record[1], record[2] or '', sealed, open, '', ''}
end
local numbers = redis.call('HGET', KEYS[2], 'n:' .. batch_id)
if numbers or redis.call('HEXISTS', KEYS[2], batch_id) == 1 then
  local state = 'pending'
  if redis.call('LINDEX', KEYS[3], 0) == batch_id and redis.call('HEXISTS', KEYS[2], 'lease') == 1
      and tonumber(redis.call('ZSCORE', KEYS[4], user) or '0') > now_ms() then
    state = 'delivering' -- leased, and the lease has not run out: a POST may be open now
  end
  return {state, numbers or '', sealed, open, numbers and '' or redis.call('HGET', KEYS[2], batch_id), ''}
end
local info = redis.call('HGET', KEYS[5], 'i:' .. batch_id)
if info then
  return {'dead_letter', '', sealed, open, redis.call('HGET', KEYS[5], batch_id) or '', info}
end
return false
