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
forget_route_entries(old)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return {'ok', redis.call('INCR', KEYS[4])}
