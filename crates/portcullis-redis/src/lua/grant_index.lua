-- The owner indexes (the families of a user, of a client) and purge buckets.

local function hexs(s)
  return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end))
end
local function uk(user) return P .. ':u:{' .. hexs(user) .. '}' end
local function ck(client) return P .. ':k:{' .. hexs(client) .. '}' end
-- add a family to an index (a set, or a purge bucket: a lexical sorted set) and make the index
-- outlive it
local function idx_add(key, member, exp, zset)
  if zset then redis.call('ZADD', key, 0, member) else redis.call('SADD', key, member) end
  local want = ttl(exp)
  if redis.call('PTTL', key) < want then redis.call('PEXPIRE', key, want) end
end
