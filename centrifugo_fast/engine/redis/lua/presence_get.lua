-- A channel's presence after dropping expired entries (engine.md §2.7).
-- KEYS: expiry zset, data hash. ARGV: 1 now (unix s).
-- Returns HGETALL of the data hash: client id, ClientInfo bytes, ...
local expired = redis.call('zrangebyscore', KEYS[1], '-inf', ARGV[1])
for i = 1, #expired, 1000 do
  redis.call('hdel', KEYS[2], unpack(expired, i, math.min(i + 999, #expired)))
end
if #expired > 0 then
  redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[1])
end
return redis.call('hgetall', KEYS[2])
