-- Shared helpers, prepended by datafy/store/connection.py to every script (Lua scripts cannot import).
-- A user's keys arrive in KEYS in this fixed order (see Buffer._user_keys in datafy/store/buffer.py):
--   1 buffer, 2 meta, 3 timer, 4 sequence, 5 outbox, 6 batches, 7 due, 8 ready, 9 sealed (messages sealed so far),
--   10 hold (the batch whose answer the chat waits for: await_answer), 11 pause (a person took the chat over)

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function clear_open_batch(user)
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  redis.call('ZREM', KEYS[7], user)
end

-- Move the open batch into the user's outbox as one sealed JSON document. Messages are never decoded
-- here: each buffer entry is already the JSON text "[received_ms,{item}]", so payloads stay byte-exact.
-- Returns the batch's sequence number and message count, or nil when there was nothing to seal.
local function seal(user, user_json, batch_id, reason, now, seq_ttl)
  -- A write that frees memory comes first: once a script has written, Redis lets it finish even at
  -- maxmemory, so batches keep moving out (and memory keeps freeing) while the API answers 503.
  redis.call('DEL', KEYS[3])
  local items = redis.call('LRANGE', KEYS[1], 0, -1)
  if #items == 0 then
    clear_open_batch(user)
    return nil
  end
  local meta = redis.call('HGETALL', KEYS[2])
  local info, fields = {}, {}
  for i = 1, #meta, 2 do
    local name = meta[i]
    if string.sub(name, 1, 2) == 'm:' then
      fields[#fields + 1] = string.sub(name, 3) .. ':' .. meta[i + 1]
    else
      info[name] = meta[i + 1]
    end
  end
  -- The deadline it was sealed for (now for a batch closed early), from which its arrival lag is measured.
  local due = math.min(tonumber(info.held_due or redis.call('ZSCORE', KEYS[7], user)) or now, now)
  local sequence = redis.call('INCR', KEYS[4])
  redis.call('EXPIRE', KEYS[4], seq_ttl)
  -- Every message the chat had sealed, this batch's included: what the API acknowledged later is newer.
  local through = redis.call('INCRBY', KEYS[9], #items)
  redis.call('EXPIRE', KEYS[9], seq_ttl)
  local extra = ''
  if info.carried then -- batches whose messages the workflow handed back (carry-over): ids, as JSON
    extra = ',"carried_over":' .. info.carried
  end
  local wait = tonumber(info.await or '0')
  if wait > 0 then -- one answer at a time: once delivered, the chat's next batch waits for the verdict
    extra = extra .. ',"await_ms":' .. wait
  end
  local paused = redis.call('PTTL', KEYS[11])
  if paused > 0 then -- a person took the chat over: the workflow routes the batch to them, not to the AI
    extra = extra .. ',"paused_until_ms":' .. (now + paused)
  end
  local body = '{"batch_id":"' .. batch_id .. '","user":' .. user_json .. ',"sequence":' .. sequence
    .. ',"through":' .. through .. ',"flush_reason":"' .. reason .. '","sealed_ms":' .. now .. ',"due_ms":' .. due
    .. ',"first_ms":' .. (info.first_ms or now) .. ',"last_ms":' .. (info.last_ms or now)
    .. ',"ttl_ms":' .. (info.ttl_ms or 0) .. extra
    .. ',"metadata":{' .. table.concat(fields, ',') .. '},"items":[' .. table.concat(items, ',') .. ']}'
  redis.call('HSET', KEYS[6], batch_id, body, 'n:' .. batch_id, sequence .. ':' .. through)
  if wait > 0 then
    redis.call('HSET', KEYS[6], 'w:' .. batch_id, wait)
  end
  redis.call('RPUSH', KEYS[5], batch_id)
  -- NX keeps the score of a head batch that is in flight or waiting for a retry; while the chat waits for the
  -- verdict on its last batch, this one waits too (until the verdict, or the hold runs out).
  local held = redis.call('PTTL', KEYS[10])
  redis.call('ZADD', KEYS[8], 'NX', held > 0 and now + held or now, user)
  clear_open_batch(user)
  return {sequence, #items}
end

-- Remove a stored route's key and match entries from the route indexes (KEYS[2] keys, KEYS[3] match of the
-- route scripts), before the route is written again or deleted.
local function forget_route_entries(row_json)
  local route = cjson.decode(row_json)
  for _, kind in ipairs({'api_keys', 'admin_keys'}) do
    for _, ref in ipairs(route[kind] or {}) do
      redis.call('HDEL', KEYS[2], ref[1])
    end
  end
  for kind, values in pairs(route['match'] or {}) do
    for _, value in ipairs(values) do
      redis.call('HDEL', KEYS[3], kind .. ':' .. value)
    end
  end
end
