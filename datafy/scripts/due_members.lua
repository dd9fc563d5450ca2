-- The members of an index whose time (score, ms) has come on the server's clock, `overdue_ms` ago or more:
-- the users whose batch is due (the due index) or whose outbox head may be tried (the ready index). Read-only.
-- KEYS: 1 index.  ARGV: 1 limit, 2 overdue_ms (0: every member whose time has come)
-- Reply: up to `limit` members, earliest first
assert(#KEYS == 1 and #ARGV == 2, 'due_members: 1 key, 2 arguments')
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms() - tonumber(ARGV[2]), 'LIMIT', 0, tonumber(ARGV[1]))
