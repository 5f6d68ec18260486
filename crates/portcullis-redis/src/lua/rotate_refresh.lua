-- Rotate a refresh token: decide::refresh, then apply the decision (rotate, grace reissue,
-- replay: revoke the family, binding mismatch: refuse and maybe revoke).
-- KEYS: as redeem_code.
-- ARGV[5] client; ARGV[6] the rest, packed (one argument costs the client less than fifteen),
-- each field followed by '\n' but the last: '1' if a scope was requested, the scope, grace
-- window (capped), successor hash, access hash, refresh idle lifetime, access lifetime,
-- binding compares the user agent ('1'/'0'), the IP prefix, the device id, action ('report',
-- 'reject', 'revoke'), number of candidates, of user-agent hashes, of IP-prefix hashes, of
-- device-id hashes; then from ARGV[7] the candidates and the three lists.
local client = ARGV[5]
local sflag, sreq, grace_s, succ, acc, idle_s, accl_s, cmp_u, cmp_i, cmp_d, action, nc_s, nu_s,
  ni_s, nd_s = string.match(ARGV[6],
  '^' .. ('([^\n]*)\n'):rep(14) .. '([^\n]*)$')
local nc, nu, ni, nd = tonumber(nc_s), tonumber(nu_s), tonumber(ni_s), tonumber(nd_s)
local LISTS = 7
local F, hash, tok, raw = locate('r', list(LISTS, nc))
if not tok then return reply({ 'N' }) end
local fam = jget(fk(F, 'f'))
if not fam then return reply({ 'N' }) end
if fam.ra ~= nil then return reply({ 'J', 'revoked' }) end
if NOW >= num(tok.ea) or NOW >= num(fam.ex) then return reply({ 'J', 'expired' }) end
if fam.c ~= client then return reply({ 'J', 'wrong_client' }) end
local scope_req = nil
if sflag == '1' then
  scope_req = sreq
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
local grace_for = nil
local s = nil
if tok.ua ~= nil then
  local grace = tonumber(grace_s)
  if grace > 0 and NOW < num(tok.ua) + grace and tok.su ~= nil then
    s = jget(rk(F, 'r', tok.su))
  end
  if s ~= nil and s.k == 'r' and s.ua == nil and s.rv == nil and NOW < num(s.ea) then
    grace_for = tok.su
  else
    return replay()
  end
end
-- binding (decide::binding): a recorded value must be presented again and match
local mm_u, mm_i, mm_d = false, false, false
if cmp_u == '1' or cmp_i == '1' or cmp_d == '1' then
  local function matches(stored, from, n)
    if stored == nil then return true end
    local ok = false
    for i = 0, n - 1 do
      if ct_eq(ARGV[from + i], stored) then ok = true end
    end
    return ok
  end
  local base = LISTS + nc
  mm_u = cmp_u == '1' and not matches(fam.bu, base, nu)
  mm_i = cmp_i == '1' and not matches(fam.bi, base + nu, ni)
  mm_d = cmp_d == '1' and not matches(fam.bd, base + nu + ni, nd)
end
local function b(x) if x then return '1' end return '0' end
local reported = '0'
if mm_u or mm_i or mm_d then
  if action == 'report' then
    reported = '1'
  elseif action == 'reject' then
    return reply({ 'B', F, fam.u, fam.c, hash, b(mm_u), b(mm_i), b(mm_d), '0' })
  else
    revoke_fam(F, fam, 'binding_mismatch')
    return reply({ 'B', F, fam.u, fam.c, hash, b(mm_u), b(mm_i), b(mm_d), '1' })
  end
end
local idle, accl = tonumber(idle_s), tonumber(accl_s)
local gen = num(tok.g) + 1
-- a grace reissue replaces the earlier successor's generation
if s ~= nil then gen = num(s.g) end
local issued = insert_pair(F, fam, hash, gen, succ, acc, scope_req, idle, accl)
if not issued then return reply({ 'D' }) end
local tag = 'R'
if grace_for == nil then
  -- an unused token's record has neither field yet: append them to it as stored
  redis.call('SET', rk(F, 'r', hash),
    string.sub(raw, 1, -2) .. ',"ua":"' .. n2s(NOW) .. '","su":"' .. succ .. '"}', 'KEEPTTL')
else
  tag = 'G'
  s.rv = n2s(NOW)
  jkeep(rk(F, 'r', grace_for), s)
  tok.su = succ
  jkeep(rk(F, 'r', hash), tok)
end
return reply({ tag, F, fam.u, fam.c, hash, issued[1], issued[2], issued[3], issued[4], issued[5],
  reported, b(mm_u), b(mm_i), b(mm_d), grace_for or '' })
