-- portcullis-redis grant store: the prelude every grant script starts with.
--
-- ARGV[1] key prefix, ARGV[2] the caller's time in microseconds ('' = the server's TIME),
-- ARGV[3] '1' on a single node, '0' on Redis Cluster, ARGV[4] the family id (hex) or ''.
--
-- Where a token's record lives (<kind> is c, r or a; <hash> 64 hex digits):
--   single node  P:<kind>:{<hash>}       the record itself, found by hash in one GET
--   Cluster      P:{F}:<kind>:<hash>     in its family's slot (the caller found F first through
--                P:<kind>:{<hash>}, a pointer holding F)
-- A family: P:{F}:f (record) and P:{F}:t (the set of its tokens' "<kind>:<hash>").
-- Records are JSON with every time an integer of microseconds as a string (exact in Lua's
-- doubles below 2^53, and never printed as 1.7e+15); numbers go out through string.format.
-- A script's top level runs on every call: keep it to what every script needs.
local P = ARGV[1]
-- (Arithmetic coerces a string of digits with one conversion; tonumber makes two. Scripts
-- run on every token use, so each conversion, capture and table counts.)
local NOW
if ARGV[2] == '' then
  local t = redis.call('TIME')
  NOW = t[1] * 1000000 + t[2]
else
  NOW = ARGV[2] + 0
end
local SINGLE = ARGV[3] == '1'

local function n2s(n) return string.format('%d', n) end
local function num(s) if s == nil then return nil end return s + 0 end
-- NOW as stored: made once, when first needed
local NOWS
local function nows()
  if not NOWS then NOWS = n2s(NOW) end
  return NOWS
end
-- a key of family F (all share the hash tag {F})
local function fk(F, s) return P .. ':{' .. F .. '}:' .. s end
-- a token's key by its hash: its record (single node) or its pointer (Cluster)
local function pk(kind, hex) return P .. ':' .. kind .. ':{' .. hex .. '}' end
-- a token's record
local function rk(F, kind, hex)
  if SINGLE then return pk(kind, hex) end
  return fk(F, kind .. ':' .. hex)
end
-- milliseconds from now until exp, at least 1
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
local function jkeep(key, t) redis.call('SET', key, cjson.encode(t), 'KEEPTTL') end
local function live(fam) return fam.ra == nil and NOW < num(fam.ex) end
local function revoke_fam(F, fam, reason)
  fam.ra = nows()
  fam.rr = reason
  jkeep(fk(F, 'f'), fam)
end
-- the first candidate with a stored record of `kind`: family, hash, record. On Cluster the
-- caller resolved the family (ARGV[4]) and only its slot is searched.
-- (and the record as stored)
local function locate(kind, cands)
  for _, c in ipairs(cands) do
    local raw = redis.call('GET', rk(ARGV[4], kind, c))
    if raw then
      local r = cjson.decode(raw)
      return r.f or ARGV[4], c, r, raw
    end
  end
  return nil, nil, nil, nil
end
-- ARGV[from .. from+n-1]
local function list(from, n)
  local t = {}
  for i = 0, n - 1 do t[#t + 1] = ARGV[from + i] end
  return t
end
