-- The receiver's circuit breaker, shared by every monitor: record outcomes, and say whether to send.
-- Closed: batches go out on their own schedules. Open (an outage, or a Retry-After pause): nothing goes
-- out but one probe at a time, every probe_every_ms; the first answer closes it again.
-- Opening rule: at least open_after retryable failures in a row, and no success for quiet_ms.
-- KEYS: 1 receiver (hash: failures, last_success_ms, open_since_ms, pause_until_ms, probe_at_ms)
-- ARGV: 1 answers (2xx, or a 4xx: the receiver is up), 2 retryable failures, 3 pause_ms (a Retry-After,
--       0 none), 4 open_after, 5 quiet_ms, 6 probe_every_ms, 7 take_probe (1: the caller would send the
--       next probe), 8 probe_hold_ms (how long a granted turn is held before another monitor may probe),
--       9 release_ms (-1: none; else the held turn is handed back and the next probe may go this many ms
--       from now: 0 when a probe got no verdict, e.g. its batch had expired; probe_every when its monitor
--       found nothing to probe), 10 caught_up (1: the caller finished the catch-up this close owed)
-- Reply: {open_since_ms (0: closed), paused_until_ms (no request before it), now_ms,
--         closed_from_ms (this call closed it: when it had opened; else 0), probe granted (1/0), failures,
--         catch-up owed (1: the breaker closed and no monitor has yet made the waiting batches due),
--         closed_ms (when it last closed after an outage; 0 never)}
assert(#KEYS == 1 and #ARGV == 10, 'breaker: 1 key, 10 arguments')
local answers, failures, pause = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local open_after, quiet, probe_every = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local take_probe, probe_hold, release = ARGV[7] == '1', tonumber(ARGV[8]), tonumber(ARGV[9])
local caught_up = ARGV[10] == '1'
redis.call('HDEL', KEYS[1], 'none') -- first a write that frees memory: see seal() in _lib.lua
local now = now_ms()
local s = redis.call('HMGET', KEYS[1], 'failures', 'last_success_ms', 'open_since_ms', 'pause_until_ms',
  'probe_at_ms', 'catch_up', 'closed_ms')
local count, last_success = tonumber(s[1] or '0'), tonumber(s[2] or '0')
local open_since, pause_until, probe_at = tonumber(s[3] or '0'), tonumber(s[4] or '0'), tonumber(s[5] or '0')
local owed, closed_at = s[6] == '1', tonumber(s[7] or '0')
local closed_from, granted = 0, 0

if answers > 0 then -- the receiver answered: close, and tell the caller to catch up
  closed_from = open_since
  owed = owed or open_since > 0 -- until a monitor reports the catch-up done, every monitor is told to run it
  closed_at = open_since > 0 and now or closed_at
  count, last_success, open_since, pause_until, probe_at = 0, now, 0, 0, 0
elseif failures > 0 then
  count = count + failures
  if pause > 0 then -- Retry-After pauses the whole receiver, whatever its state
    open_since = open_since > 0 and open_since or now
    pause_until = math.max(pause_until, now + pause)
  elseif open_since == 0 and count >= open_after and now - last_success >= quiet then
    open_since, owed = now, false -- down again: the next close owes its own catch-up
  end
  if open_since > 0 then -- opened, or a probe (or a straggler) failed: the next probe comes later
    probe_at = now + probe_every
  end
end
if caught_up and closed_from == 0 then
  owed = false
end
if release >= 0 and open_since > 0 and probe_at > now + release then
  probe_at = now + release
end
if take_probe and open_since > 0 and now >= math.max(pause_until, probe_at) then
  probe_at, granted = now + probe_hold, 1 -- one probe at a time: the turn is held until its outcome
end
if answers > 0 or failures > 0 or granted == 1 or release >= 0 or caught_up then
  redis.call('HSET', KEYS[1], 'failures', count, 'last_success_ms', last_success, 'open_since_ms', open_since,
    'pause_until_ms', pause_until, 'probe_at_ms', probe_at, 'catch_up', owed and 1 or 0, 'closed_ms', closed_at)
  redis.call('PEXPIRE', KEYS[1], 86400000) -- a receiver nobody delivers to for a day is forgotten
end
return {open_since, math.max(pause_until, probe_at), now, closed_from, granted, count, owed and 1 or 0, closed_at}
