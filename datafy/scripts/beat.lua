-- A monitor process says it is alive, and learns who else is: the partitions are shared among the living.
-- KEYS: 1 the index of monitors (zset id -> last beat ms), 2 this monitor's record (hash)
-- ARGV: 1 id, 2 ttl_ms (a monitor silent this long is gone), 3.. field, value pairs of the record
-- Reply: the ids of the monitors alive (in beat order)
assert(#KEYS == 2 and #ARGV >= 2 and #ARGV % 2 == 0, 'beat: 2 keys, id, ttl_ms and field/value pairs')
local now, ttl = now_ms(), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
if #ARGV > 2 then
  redis.call('HSET', KEYS[2], 'beat_ms', now, unpack(ARGV, 3))
else
  redis.call('HSET', KEYS[2], 'beat_ms', now)
end
redis.call('PEXPIRE', KEYS[2], ttl)
return redis.call('ZRANGE', KEYS[1], 0, -1)
