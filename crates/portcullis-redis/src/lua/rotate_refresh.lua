-- Rotate a refresh token: decide::refresh, then apply the decision (rotate, grace reissue,
-- replay: revoke the family, binding mismatch: refuse and maybe revoke).
-- KEYS: as redeem_code.
-- ARGV[5] client; ARGV[6] the fixed fields, each at a fixed offset (one argument costs the
-- client less than fifteen, and the script reads a field with one string.sub, where a pattern
-- capture costs several times more; this script runs on every refresh):
--     1  '1' if a scope was requested
--   2-4  binding compares the user agent, the IP prefix, the device id ('1'/'0')
--     5  on a binding mismatch: 'p' report, 'j' reject, 'v' revoke the family
--  6-69  successor hash          70-133  access hash
-- 134-149 grace window, 150-165 refresh idle lifetime, 166-181 access lifetime (microseconds,
--         16 digits)
-- 182-184, 185-187, 188-190, 191-193  number of candidates, of user-agent hashes, of IP-prefix
--         hashes, of device-id hashes (3 digits)
--  194-  the requested scope
-- then from ARGV[7] the candidates and the three lists.
local client, A = ARGV[5], ARGV[6]
local sub = string.sub
local LISTS = 7
local nc = sub(A, 182, 184) + 0
local F, hash, tok, raw
for i = LISTS, LISTS + nc - 1 do
  raw = redis.call('GET', rk(ARGV[4], 'r', ARGV[i]))
  if raw then
    hash = ARGV[i]
    tok = cjson.decode(raw)
    F = tok.f or ARGV[4]
    break
  end
end
if not tok then return reply({ 'N' }) end
local fam = jget(fk(F, 'f'))
if not fam then return reply({ 'N' }) end
if fam.ra ~= nil then return reply({ 'J', 'revoked' }) end
local ex = fam.ex + 0
if NOW >= tok.ea + 0 or NOW >= ex then return reply({ 'J', 'expired' }) end
if fam.c ~= client then return reply({ 'J', 'wrong_client' }) end
local scope_req = nil
if sub(A, 1, 1) == '1' then
  scope_req = sub(A, 194)
  if scope_req ~= fam.s then
    local have = {}
    for w in string.gmatch(fam.s, '[^ ]+') do have[w] = true end
    for w in string.gmatch(scope_req, '[^ ]+') do
      if not have[w] then return reply({ 'J', 'scope' }) end
    end
  end
end
local function replay()
  revoke_fam(F, fam, 'refresh_replay')
  return reply({ 'P', F, fam.u, fam.c, hash, tok.g })
end
if tok.rv ~= nil then return replay() end
local succ = sub(A, 6, 69)
local grace_for = nil
local s = nil
if tok.ua ~= nil then
  local grace = sub(A, 134, 149) + 0
  if grace > 0 and NOW < tok.ua + grace and tok.su ~= nil then
    s = jget(rk(F, 'r', tok.su))
  end
  if s ~= nil and s.k == 'r' and s.ua == nil and s.rv == nil and NOW < s.ea + 0 then
    grace_for = tok.su
  else
    return replay()
  end
end
-- binding (decide::binding): a recorded value must be presented again and match
local mm_u, mm_i, mm_d = false, false, false
local function b(x) if x then return '1' end return '0' end
local reported = '0'
if sub(A, 2, 4) ~= '000' then
  local function matches(stored, from, n)
    if stored == nil then return true end
    local ok = false
    for i = 0, n - 1 do
      if ct_eq(ARGV[from + i], stored) then ok = true end
    end
    return ok
  end
  local nu, ni, nd = sub(A, 185, 187) + 0, sub(A, 188, 190) + 0, sub(A, 191, 193) + 0
  local base = LISTS + nc
  mm_u = sub(A, 2, 2) == '1' and not matches(fam.bu, base, nu)
  mm_i = sub(A, 3, 3) == '1' and not matches(fam.bi, base + nu, ni)
  mm_d = sub(A, 4, 4) == '1' and not matches(fam.bd, base + nu + ni, nd)
  if mm_u or mm_i or mm_d then
    local action = sub(A, 5, 5)
    if action == 'p' then
      reported = '1'
    elseif action == 'j' then
      return reply({ 'B', F, fam.u, fam.c, hash, b(mm_u), b(mm_i), b(mm_d), '0' })
    else
      revoke_fam(F, fam, 'binding_mismatch')
      return reply({ 'B', F, fam.u, fam.c, hash, b(mm_u), b(mm_i), b(mm_d), '1' })
    end
  end
end
-- a grace reissue replaces the earlier successor's generation
local gen = tok.g + 1
if s ~= nil then gen = s.g + 0 end
local issued = insert_pair(F, fam, ex, hash, gen, succ, sub(A, 70, 133), scope_req,
  sub(A, 150, 165) + 0, sub(A, 166, 181) + 0)
if not issued then return reply({ 'D' }) end
local tag = 'R'
if grace_for == nil then
  -- an unused token's record has neither field yet: append them to it as stored
  redis.call('SET', rk(F, 'r', hash),
    sub(raw, 1, -2) .. ',"ua":"' .. nows() .. '","su":"' .. succ .. '"}', 'KEEPTTL')
else
  tag = 'G'
  s.rv = nows()
  jkeep(rk(F, 'r', grace_for), s)
  tok.su = succ
  jkeep(rk(F, 'r', hash), tok)
end
-- the reply as `reply` packs it, built in one concatenation
return { tag .. '\n' .. F .. '\n\n\n' .. hash .. '\n' .. issued .. '\n' .. reported .. '\n'
  .. b(mm_u) .. '\n' .. b(mm_i) .. '\n' .. b(mm_d) .. '\n' .. (grace_for or ''), fam.u, fam.c }
