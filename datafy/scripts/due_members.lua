-- The members of indexes whose time (score, ms) has come on the server's clock, `overdue_ms` ago or more:
-- the users whose batch is due (the due index) or whose outbox head may be tried (the ready index). Read-only.
-- One call reads every partition of a server (one key per call on a Cluster, where they are in other slots).
-- KEYS: the indexes.  ARGV: 1 limit (per index), then one overdue_ms per index (0: every member whose time
-- has come)
-- Reply: one page per index, in KEYS order: up to `limit` members, earliest first
assert(#KEYS >= 1 and #ARGV == #KEYS + 1, 'due_members: a limit, then an overdue_ms per key')
local now, limit, pages = now_ms(), tonumber(ARGV[1]), {}
for i, key in ipairs(KEYS) do
  pages[i] = redis.call('ZRANGEBYSCORE', key, '-inf', now - tonumber(ARGV[i + 1]), 'LIMIT', 0, limit)
end
return pages
