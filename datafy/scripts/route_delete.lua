-- Delete a route: its keys and matches stop working at once; its row stays, marked deleted, so that the batches
-- it accepted are still delivered with its last settings.
-- KEYS: 1 rows, 2 keys, 3 match, 4 version
-- ARGV: 1 name, 2 the row marked deleted (JSON)
-- Reply: {'ok', version} | {'missing'}
assert(#KEYS == 4 and #ARGV == 2, 'route_delete: 4 keys, 2 arguments')
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old or cjson.decode(old)['deleted_ms'] ~= 0 then
  return {'missing'}
end
local before = cjson.decode(old)
for _, kind in ipairs({'api_keys', 'admin_keys'}) do
  for _, ref in ipairs(before[kind] or {}) do
    redis.call('HDEL', KEYS[2], ref[1])
  end
end
for kind, values in pairs(before['match'] or {}) do
  for _, value in ipairs(values) do
    redis.call('HDEL', KEYS[3], kind .. ':' .. value)
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return {'ok', redis.call('INCR', KEYS[4])}
