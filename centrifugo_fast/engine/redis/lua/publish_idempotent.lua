-- Publish without history but with an idempotency key (engine.md §2.4 B).
-- KEYS: idempotent result hash.
-- ARGV: 1 publication bytes, 2 PUB/SUB channel, 3 publish command, 4 result ttl s.
-- Returns 1 when an earlier publish with the same key suppresses this one, else 0.
if redis.call('hexists', KEYS[1], 'e') == 1 then
  return 1
end
redis.call(ARGV[3], ARGV[2], ARGV[1])
redis.call('hset', KEYS[1], 'e', '')
redis.call('expire', KEYS[1], ARGV[4])
return 0
