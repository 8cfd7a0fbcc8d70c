-- Read a channel's history and stream position (engine.md §2.5).
-- KEYS: stream, stream meta hash.
-- ARGV: 1 '1' to include publications, 2 first offset to return (forward) or to start from
--       going back (reverse; '' = from the newest), 3 limit (< 1 = all), 4 '1' for reverse,
--       5 meta ttl ms (0 = keep), 6 fresh epoch.
-- Returns {top offset, epoch, entries} where entries is what XRANGE/XREVRANGE returns.
local meta = redis.call('hmget', KEYS[2], 'e', 's')
local epoch = meta[1]
local top = tonumber(meta[2] or '0')
if not epoch then
  -- A read fixes the epoch that later publishes reuse.
  epoch = ARGV[6]
  redis.call('hset', KEYS[2], 'e', epoch)
end
local meta_ttl = tonumber(ARGV[5])
if meta_ttl > 0 then
  redis.call('pexpire', KEYS[2], meta_ttl)
end
local entries = {}
if ARGV[1] == '1' then
  local limit = tonumber(ARGV[3])
  if ARGV[4] == '1' then
    local from = ARGV[2]
    if from == '' then
      from = '+'
    elseif tonumber(from) > top then
      return {top, epoch, entries}
    else
      from = from .. '-0'
    end
    if limit > 0 then
      entries = redis.call('xrevrange', KEYS[1], from, '-', 'COUNT', limit)
    else
      entries = redis.call('xrevrange', KEYS[1], from, '-')
    end
  else
    local from = ARGV[2] .. '-0'
    if limit > 0 then
      entries = redis.call('xrange', KEYS[1], from, '+', 'COUNT', limit)
    else
      entries = redis.call('xrange', KEYS[1], from, '+')
    end
  end
end
return {top, epoch, entries}
