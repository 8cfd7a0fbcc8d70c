-- A plain PUBLISH routed by the channel's hash slot (Redis Cluster, where a bare PUBLISH has
-- no key to route by). KEYS: the PUB/SUB channel. ARGV: 1 payload, 2 publish command.
return redis.call(ARGV[2], KEYS[1], ARGV[1])
