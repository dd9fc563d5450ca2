-- The members of an index whose time (score, ms) has come on the server's clock: the users whose batch is
-- due (the due index) or whose outbox head may be tried (the ready index). Read-only.
-- KEYS: 1 index.  ARGV: 1 limit
-- Reply: up to `limit` members, earliest first
assert(#KEYS == 1 and #ARGV == 1, 'due_members: 1 key, 1 argument')
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[1]))
