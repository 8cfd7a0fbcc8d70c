-- Publish into a channel with history: append to the stream and PUBLISH in one step, so
-- offsets are assigned and delivered in one total order per channel (engine.md §2.4 C).
-- KEYS: stream, stream meta hash, idempotent result hash (unused when ARGV[8] is '').
-- ARGV: 1 publication bytes, 2 history size, 3 history ttl ms, 4 PUB/SUB channel ('' = none),
--       5 meta ttl ms (0 = keep), 6 fresh epoch, 7 publish command, 8 result ttl s ('' = none),
--       9 '1' for a delta publish.
-- Returns {offset, epoch, 1 if suppressed by idempotency else 0}.
local payload = ARGV[1]
local result_ttl = ARGV[8]
if result_ttl ~= '' then
  local seen = redis.call('hmget', KEYS[3], 'e', 's')
  if seen[1] then
    return {tonumber(seen[2] or '0'), seen[1], 1}
  end
end
local epoch = redis.call('hget', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[6]
  redis.call('hset', KEYS[2], 'e', epoch)
end
local offset = redis.call('hincrby', KEYS[2], 's', 1)
local meta_ttl = tonumber(ARGV[5])
if meta_ttl > 0 then
  redis.call('pexpire', KEYS[2], meta_ttl)
end
local text_offset = string.format('%d', offset)
local previous = ''
if ARGV[9] == '1' and offset > 1 then
  local last = redis.call('xrevrange', KEYS[1], '+', '-', 'COUNT', 1)
  if last[1] then
    previous = last[1][2][2]
  end
end
if offset == 1 then
  -- A new epoch starts: drop whatever an older epoch left (its IDs would be larger).
  redis.call('del', KEYS[1])
end
redis.call('xadd', KEYS[1], 'MAXLEN', ARGV[2], text_offset .. '-0', 'd', payload)
redis.call('pexpire', KEYS[1], ARGV[3])
if ARGV[4] ~= '' then
  local message
  if ARGV[9] == '1' then
    message = '__d1:' .. text_offset .. ':' .. epoch .. ':' .. #previous .. ':' .. previous
      .. ':' .. #payload .. ':' .. payload
  else
    message = '__p1:' .. text_offset .. ':' .. epoch .. '__' .. payload
  end
  redis.call(ARGV[7], ARGV[4], message)
end
if result_ttl ~= '' then
  redis.call('hset', KEYS[3], 'e', epoch, 's', text_offset)
  redis.call('expire', KEYS[3], result_ttl)
end
return {offset, epoch, 0}
