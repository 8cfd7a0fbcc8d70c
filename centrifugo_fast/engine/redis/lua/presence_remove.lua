-- Remove one connection's presence (engine.md §2.7).
-- KEYS: expiry zset, data hash, user expiry zset, user connection-count hash.
-- ARGV: 1 client id, 2 user id, 3 '1' with the per-user mapping.
local existed = redis.call('hdel', KEYS[2], ARGV[1])
redis.call('zrem', KEYS[1], ARGV[1])
if ARGV[3] == '1' and existed == 1 then
  local left = redis.call('hincrby', KEYS[4], ARGV[2], -1)
  if left <= 0 then
    redis.call('hdel', KEYS[4], ARGV[2])
    redis.call('zrem', KEYS[3], ARGV[2])
  end
end
return 0
