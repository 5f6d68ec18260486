-- portcullis-redis grant store: the prelude every grant script starts with.
--
-- ARGV[1] key prefix, ARGV[2] the caller's time in microseconds ('' = the server's TIME),
-- ARGV[3] '1' when one script resolves token pointers itself (single node), '0' when the
-- caller resolved the family first (Redis Cluster), ARGV[4] the family id (hex) or ''.
-- Times are integer microseconds (exact in Lua doubles below 2^53); numbers are written with
-- string.format('%d'), never tostring (which prints 1.7e+15).
local P = ARGV[1]
local NOW
if ARGV[2] == '' then
  if redis.replicate_commands then redis.replicate_commands() end
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  NOW = tonumber(ARGV[2])
end
local SINGLE = ARGV[3] == '1'

local function n2s(n) return string.format('%d', n) end
local function num(s) if s == nil then return nil end return tonumber(s) end
-- a key of family F (all share the hash tag {F})
local function fk(F, s) return P .. ':{' .. F .. '}:' .. s end
-- the pointer from a token hash to its family: kind c (code), r (refresh), a (access)
local function pk(kind, hex) return P .. ':' .. kind .. ':{' .. hex .. '}' end
local function hexs(s)
  return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end))
end
local function uk(user) return P .. ':u:{' .. hexs(user) .. '}' end
local function ck(client) return P .. ':k:{' .. hexs(client) .. '}' end
-- milliseconds from now until exp, at least 1 (a key never lives past its record's expiry by
-- more than the rounding)
local function ttl(exp)
  local ms = math.ceil((exp - NOW) / 1000)
  if ms < 1 then ms = 1 end
  return ms
end
local function jget(key)
  local v = redis.call('GET', key)
  if not v then return nil end
  return cjson.decode(v)
end
local function jset(key, t, exp) redis.call('SET', key, cjson.encode(t), 'PX', ttl(exp)) end
local function jkeep(key, t) redis.call('SET', key, cjson.encode(t), 'KEEPTTL') end
-- constant-time equality of two strings of public length
local function ct_eq(a, b)
  if a == nil or b == nil or #a ~= #b then return false end
  local acc = 0
  for i = 1, #a do acc = bit.bor(acc, bit.bxor(string.byte(a, i), string.byte(b, i))) end
  return acc == 0
end
local function live(fam) return fam.ra == nil and NOW < num(fam.ex) end
local function revoke_fam(F, fam, reason)
  fam.ra = n2s(NOW)
  fam.rr = reason
  jkeep(fk(F, 'f'), fam)
end
-- extend a set's (or lexical sorted set's) TTL so that it outlives the family it now holds
local function idx_add(key, member, exp, zset)
  if zset then redis.call('ZADD', key, 0, member) else redis.call('SADD', key, member) end
  local want = ttl(exp)
  if redis.call('PTTL', key) < want then redis.call('PEXPIRE', key, want) end
end
-- the family of the first candidate with a pointer (single node), or the one the caller found
local function resolve(kind, cands)
  if not SINGLE then return ARGV[4] end
  for _, c in ipairs(cands) do
    local f = redis.call('GET', pk(kind, c))
    if f then return f end
  end
  return nil
end
-- the first candidate whose record is stored in family F, with the record
local function find_rec(F, kind, cands)
  for _, c in ipairs(cands) do
    local r = jget(fk(F, kind .. ':' .. c))
    if r then return c, r end
  end
  return nil, nil
end
-- ARGV[from .. from+n-1]
local function list(from, n)
  local t = {}
  for i = 0, n - 1 do t[#t + 1] = ARGV[from + i] end
  return t
end
-- a scope (sorted, space-separated) is a subset of another
local function subset(req, have)
  if req == have then return true end
  local set = {}
  for w in string.gmatch(have, '[^ ]+') do set[w] = true end
  for w in string.gmatch(req, '[^ ]+') do
    if not set[w] then return false end
  end
  return true
end
-- store a new refresh token (child of parent) and access token; returns the issued fields
local function insert_pair(F, fam, parent, gen, succ, acc, scope_req, idle, accl)
  local ex = num(fam.ex)
  local r_exp = math.min(NOW + idle, ex)
  local a_exp = math.min(NOW + accl, ex)
  local narrowed = nil
  if scope_req ~= nil and scope_req ~= fam.s then narrowed = scope_req end
  jset(fk(F, 'r:' .. succ), { k = 'r', g = n2s(gen), p = parent, ia = n2s(NOW), ea = n2s(r_exp) }, r_exp)
  local a = { ia = n2s(NOW), ea = n2s(a_exp) }
  if narrowed then a.s = narrowed end
  jset(fk(F, 'a:' .. acc), a, a_exp)
  redis.call('SADD', fk(F, 't'), 'r:' .. succ, 'a:' .. acc)
  if SINGLE then
    redis.call('SET', pk('r', succ), F, 'PX', ttl(r_exp))
    redis.call('SET', pk('a', acc), F, 'PX', ttl(a_exp))
  end
  return { n2s(gen), narrowed or fam.s, fam.r, n2s(r_exp), n2s(a_exp) }
end
-- refuse new token hashes that exist already (nothing written yet)
local function duplicate(F, succ, acc)
  if SINGLE then
    return redis.call('EXISTS', pk('r', succ), pk('a', acc)) > 0
  end
  return redis.call('EXISTS', fk(F, 'r:' .. succ), fk(F, 'a:' .. acc)) > 0
end
