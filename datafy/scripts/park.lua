-- Set aside a ready batch whose receiver is down (its breaker is open): it waits in its route's `retrying`
-- index, where the catch-up finds it when the receiver answers again (or a probe takes it), and is looked at
-- again after park_ms at the latest. A batch leased meanwhile (not due any more) is left alone.
-- KEYS: 1 ready, 2 retrying (of the chat's route).  ARGV: 1 user, 2 park_ms
-- Reply: 1 parked | 0 not due (leased or gone), or made due by a catch-up (a probe's candidate: left for the
--        monitor that holds the probe turn)
assert(#KEYS == 2 and #ARGV == 2, 'park: 2 keys, 2 arguments')
local user = ARGV[1]
local now = now_ms()
local ready_at = tonumber(redis.call('ZSCORE', KEYS[1], user))
if not ready_at or ready_at > now then
  return 0
end
local since = redis.call('ZSCORE', KEYS[2], user)
if since and tonumber(since) == ready_at then -- the catch-up makes a batch due at the moment its wait began
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), user)
redis.call('ZADD', KEYS[2], 'NX', ready_at, user) -- the oldest wait first at the catch-up
return 1
