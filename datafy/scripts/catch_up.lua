-- Make batches of this partition that wait for a retry ready at once, in the order their wait began (oldest
-- first): all of them when the receiver answers again, or only the oldest few for a probe while it is down
-- (a full pass is O(waiting batches), too long to repeat every few seconds through a large outage).
-- Leased batches are not in `retrying`, so leases are untouched.
-- KEYS: 1 ready, 2 retrying (user -> ms its wait began).  ARGV: 1 limit (0: every waiting batch)
-- Reply: how many batches were made ready
assert(#KEYS == 2 and #ARGV == 1, 'catch_up: 2 keys, 1 argument')
redis.call('ZREM', KEYS[2], '') -- first a write that frees memory: see seal() in _lib.lua
local now = now_ms()
local waiting = redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local moved = 0
for i = 1, #waiting, 2 do
  local user, since = waiting[i], tonumber(waiting[i + 1])
  local ready_at = tonumber(redis.call('ZSCORE', KEYS[1], user))
  if ready_at and ready_at > now then
    redis.call('ZADD', KEYS[1], math.min(since, now), user)
    moved = moved + 1
  end
end
return moved
