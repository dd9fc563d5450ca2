-- The members of indexes whose time (score, ms) has come on the server's clock, `overdue_ms` ago or more:
-- the users whose batch is due (the due index) or whose outbox head may be tried (the ready index). Read-only.
-- One call reads every partition of a server (one key per call on a Cluster, where they are in other slots).
-- KEYS: the indexes.  ARGV: 1 limit (per index), 2 '1': also tell when the next member's time comes, then one
-- overdue_ms per index (0: every member whose time has come)
-- Reply: {pages, wait_ms}: one page per index, in KEYS order, of up to `limit` members, earliest first; and in
-- how many ms the earliest member left out comes due (0: a page was full; -1: none left, or not asked)
assert(#KEYS >= 1 and #ARGV == #KEYS + 2, 'due_members: a limit, a flag, then an overdue_ms per key')
local now, limit, timed = now_ms(), tonumber(ARGV[1]), ARGV[2] == '1'
local pages, wait = {}, -1
for i, key in ipairs(KEYS) do
  local upto = now - tonumber(ARGV[i + 2])
  pages[i] = redis.call('ZRANGEBYSCORE', key, '-inf', upto, 'LIMIT', 0, limit)
  if timed then
    local next_one = #pages[i] == limit and {'', upto}
      or redis.call('ZRANGEBYSCORE', key, string.format('(%d', upto), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if next_one[2] then
      local in_ms = math.max(tonumber(next_one[2]) - upto, 0)
      if wait < 0 or in_ms < wait then
        wait = in_ms
      end
    end
  end
end
return {pages, wait}
