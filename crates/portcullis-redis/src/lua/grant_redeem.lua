-- What redemptions share: constant-time comparison, storing a new token pair, and the reply.

-- A redemption's reply, packed: the client parses three strings rather than fifteen (each
-- element of a reply costs the client more than the packing costs here). The fields joined by
-- '\n', the family's user and client left empty, then the user and the client as they are
-- (any bytes). No other field can hold a '\n': tags, hex, digits, flags, a scope (RFC 6749
-- characters), resources as JSON.
local function reply(t)
  local tag = t[1]
  if tag == 'N' or tag == 'J' or tag == 'D' then return { table.concat(t, '\n') } end
  local u, c = t[3], t[4]
  t[3] = ''
  t[4] = ''
  return { table.concat(t, '\n'), u, c }
end

-- constant-time equality of two strings of public length
local function ct_eq(a, b)
  if a == nil or b == nil or #a ~= #b then return false end
  local acc = 0
  for i = 1, #a do acc = bit.bor(acc, bit.bxor(string.byte(a, i), string.byte(b, i))) end
  return acc == 0
end
-- Store a new refresh token (child of parent) and access token, each with its TTL, refusing
-- (with nothing written) hashes that exist already. ex is the family's expiry (a number).
-- Returns the issued fields as the reply carries them (generation, scope, resources, refresh
-- and access expiry, joined by '\n'), or nil on a duplicate.
local function insert_pair(F, fam, ex, parent, gen, succ, acc, scope_req, idle, accl)
  local r_exp = NOW + idle
  if r_exp > ex then r_exp = ex end
  local a_exp = NOW + accl
  if a_exp > ex then a_exp = ex end
  local narrowed = nil
  if scope_req ~= nil and scope_req ~= fam.s then narrowed = scope_req end
  local now, g = nows(), n2s(gen)
  local rexp, aexp = n2s(r_exp), n2s(a_exp)
  -- The records are written as strings: every value is hex, digits or a scope (RFC 6749
  -- scope characters exclude '"' and '\'), so nothing needs escaping, and this path (every
  -- rotation) skips building and encoding tables.
  local rkey = rk(F, 'r', succ)
  if not redis.call('SET', rkey, '{"f":"' .. F .. '","k":"r","g":"' .. g .. '","p":"' .. parent
    .. '","ia":"' .. now .. '","ea":"' .. rexp .. '"}', 'PX', ttl(r_exp), 'NX') then
    return nil
  end
  local a = '{"f":"' .. F .. '","ia":"' .. now .. '","ea":"' .. aexp .. '"'
  if narrowed then a = a .. ',"s":"' .. narrowed .. '"' end
  if not redis.call('SET', rk(F, 'a', acc), a .. '}', 'PX', ttl(a_exp), 'NX') then
    redis.call('DEL', rkey)
    return nil
  end
  redis.call('SADD', fk(F, 't'), 'r:' .. succ, 'a:' .. acc)
  return g .. '\n' .. (narrowed or fam.s) .. '\n' .. fam.r .. '\n' .. rexp .. '\n' .. aexp
end
