-- Connection and user counts of a channel with the per-user mapping (engine.md §2.7).
-- KEYS: expiry zset, data hash, user expiry zset, user connection-count hash.
-- ARGV: 1 now (unix s). Returns {connections, users}.
for pair = 0, 1 do
  local zset, hash = KEYS[1 + pair * 2], KEYS[2 + pair * 2]
  local expired = redis.call('zrangebyscore', zset, '-inf', ARGV[1])
  for i = 1, #expired, 1000 do
    redis.call('hdel', hash, unpack(expired, i, math.min(i + 999, #expired)))
  end
  if #expired > 0 then
    redis.call('zremrangebyscore', zset, '-inf', ARGV[1])
  end
end
return {redis.call('hlen', KEYS[2]), redis.call('hlen', KEYS[4])}
