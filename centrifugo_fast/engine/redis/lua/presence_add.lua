-- Add or refresh one connection's presence (engine.md §2.7).
-- KEYS: expiry zset, data hash, user expiry zset, user connection-count hash.
-- ARGV: 1 ttl s, 2 expire-at (unix s), 3 client id, 4 ClientInfo bytes, 5 user id,
--       6 '1' to keep the per-user mapping.
local mapping = ARGV[6] == '1'
local added = 0
if mapping then
  added = 1 - redis.call('hexists', KEYS[2], ARGV[3])
end
redis.call('hset', KEYS[2], ARGV[3], ARGV[4])
redis.call('expire', KEYS[2], ARGV[1])
redis.call('zadd', KEYS[1], ARGV[2], ARGV[3])
redis.call('expire', KEYS[1], ARGV[1])
if mapping then
  if added == 1 then
    redis.call('hincrby', KEYS[4], ARGV[5], 1)
  end
  redis.call('expire', KEYS[4], ARGV[1])
  redis.call('zadd', KEYS[3], ARGV[2], ARGV[5])
  redis.call('expire', KEYS[3], ARGV[1])
end
return 0
