-- Create or replace a route, with its key and match entries, refusing a key or match another route holds.
-- KEYS: 1 rows, 2 keys, 3 match, 4 version (the route table, one slot)
-- ARGV: 1 name, 2 row_json, 3 mode ('create': only a new name, or a deleted one; 'replace': only an existing one),
--       4 n_keys, then n_keys pairs (key hash, kind), then match entries
-- Reply: {'ok', version} | {'exists'} | {'missing'} | {'key_taken'} | {'match_taken', entry}
assert(#KEYS == 4 and #ARGV >= 4, 'route_put: 4 keys, 4 arguments at least')
local name, row, mode, n_keys = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local old = redis.call('HGET', KEYS[1], name)
local live = old and cjson.decode(old)['deleted_ms'] == 0
if mode == 'create' and live then
  return {'exists'}
elseif mode == 'replace' and not live then
  return {'missing'}
end
local owner = name
for i = 5, 4 + 2 * n_keys, 2 do
  local held = redis.call('HGET', KEYS[2], ARGV[i])
  if held and string.sub(held, string.find(held, ' ') + 1) ~= owner then
    return {'key_taken'}
  end
end
for i = 5 + 2 * n_keys, #ARGV do
  local held = redis.call('HGET', KEYS[3], ARGV[i])
  if held and held ~= owner then
    return {'match_taken', ARGV[i]}
  end
end
if old then -- what the route held before goes; what it holds now comes back below
  forget_route_entries(old)
end
for i = 5, 4 + 2 * n_keys, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1] .. ' ' .. name)
end
for i = 5 + 2 * n_keys, #ARGV do
  redis.call('HSET', KEYS[3], ARGV[i], name)
end
redis.call('HSET', KEYS[1], name, row)
return {'ok', redis.call('INCR', KEYS[4])}
