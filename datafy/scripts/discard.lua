-- Drop a user's open batch (a human took over the chat) and return what was dropped.
-- KEYS: 1 buffer, 2 meta, 3 timer, 4 due.  ARGV: 1 user
-- Reply: the buffer entries ("[received_ms,{item}]"), oldest first; empty when nothing was open
assert(#KEYS == 4 and #ARGV == 1, 'discard: 4 keys, 1 argument')
local items = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
return items
