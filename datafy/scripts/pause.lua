-- A person takes a chat over (until_ms > 0), or hands it back (0). The pause key is what sealing reads; the
-- partition's index only counts paused chats for the status.
-- KEYS: 1 pause, 2 paused (index).  ARGV: 1 user, 2 until_ms (0: resume)
-- Reply: 1 | 0 (resume of a chat that was not paused)
assert(#KEYS == 2 and #ARGV == 2, 'pause: 2 keys, 2 arguments')
local user, until_ms = ARGV[1], tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms()) -- pauses that ran out
if until_ms == 0 then
  redis.call('ZREM', KEYS[2], user)
  return redis.call('DEL', KEYS[1])
end
redis.call('SET', KEYS[1], until_ms, 'PXAT', until_ms)
redis.call('ZADD', KEYS[2], until_ms, user)
return 1
