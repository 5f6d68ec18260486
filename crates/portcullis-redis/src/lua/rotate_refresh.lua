-- Rotate a refresh token: decide::refresh, then apply the decision (rotate, grace reissue,
-- replay: revoke the family, binding mismatch: refuse and maybe revoke).
-- KEYS: as redeem_code.
-- ARGV[5] client, [6] '1' if a scope was requested, [7] the scope, [8] grace window (capped),
-- [9] successor hash, [10] access hash, [11] refresh idle lifetime, [12] access lifetime,
-- [13] binding compares the user agent ('1'/'0'), [14] the IP prefix, [15] the device id,
-- [16] action ('report', 'reject', 'revoke'), [17] number of candidates, [18] of user-agent
-- hashes, [19] of IP-prefix hashes, [20] of device-id hashes, then the four lists.
local client = ARGV[5]
local nc, nu, ni, nd = tonumber(ARGV[17]), tonumber(ARGV[18]), tonumber(ARGV[19]), tonumber(ARGV[20])
local cands = list(21, nc)
local F = resolve('r', cands)
if not F then return { 'N' } end
local fam = jget(fk(F, 'f'))
if not fam then return { 'N' } end
local hash, tok = find_rec(F, 'r', cands)
if not tok then return { 'N' } end
if fam.ra ~= nil then return { 'J', 'revoked' } end
if NOW >= num(tok.ea) or NOW >= num(fam.ex) then return { 'J', 'expired' } end
if fam.c ~= client then return { 'J', 'wrong_client' } end
local scope_req = nil
if ARGV[6] == '1' then
  scope_req = ARGV[7]
  if not subset(scope_req, fam.s) then return { 'J', 'scope' } end
end
local function replay()
  revoke_fam(F, fam, 'refresh_replay')
  return { 'P', F, fam.u, fam.c, hash, tok.g }
end
if tok.rv ~= nil then return replay() end
local grace_for = nil
if tok.ua ~= nil then
  local grace = tonumber(ARGV[8])
  local in_window = grace > 0 and NOW < num(tok.ua) + grace
  local s = nil
  if in_window and tok.su ~= nil then s = jget(fk(F, 'r:' .. tok.su)) end
  if s ~= nil and s.k == 'r' and s.ua == nil and s.rv == nil and NOW < num(s.ea) then
    grace_for = tok.su
  else
    return replay()
  end
end
-- binding (decide::binding): a recorded value must be presented again and match
local function matches(stored, from, n)
  if stored == nil then return true end
  local ok = false
  for i = 0, n - 1 do
    if ct_eq(ARGV[from + i], stored) then ok = true end
  end
  return ok
end
local base = 21 + nc
local mm_u = ARGV[13] == '1' and not matches(fam.bu, base, nu)
local mm_i = ARGV[14] == '1' and not matches(fam.bi, base + nu, ni)
local mm_d = ARGV[15] == '1' and not matches(fam.bd, base + nu + ni, nd)
local function b(x) if x then return '1' end return '0' end
local reported = '0'
if mm_u or mm_i or mm_d then
  local action = ARGV[16]
  if action == 'report' then
    reported = '1'
  elseif action == 'reject' then
    return { 'B', F, fam.u, fam.c, hash, b(mm_u), b(mm_i), b(mm_d), '0' }
  else
    revoke_fam(F, fam, 'binding_mismatch')
    return { 'B', F, fam.u, fam.c, hash, b(mm_u), b(mm_i), b(mm_d), '1' }
  end
end
local succ, acc = ARGV[9], ARGV[10]
if duplicate(F, succ, acc) then return { 'D' } end
local idle, accl = tonumber(ARGV[11]), tonumber(ARGV[12])
local rep = { reported, b(mm_u), b(mm_i), b(mm_d) }
if grace_for == nil then
  local issued = insert_pair(F, fam, hash, num(tok.g) + 1, succ, acc, scope_req, idle, accl)
  tok.ua = n2s(NOW)
  tok.su = succ
  jkeep(fk(F, 'r:' .. hash), tok)
  return { 'R', F, fam.u, fam.c, hash, issued[1], issued[2], issued[3], issued[4], issued[5],
    rep[1], rep[2], rep[3], rep[4], '' }
end
local skey = fk(F, 'r:' .. grace_for)
local s = jget(skey)
local gen = num(tok.g) + 1
if s ~= nil then
  s.rv = n2s(NOW)
  jkeep(skey, s)
  gen = num(s.g)
end
local issued = insert_pair(F, fam, hash, gen, succ, acc, scope_req, idle, accl)
tok.su = succ
jkeep(fk(F, 'r:' .. hash), tok)
return { 'G', F, fam.u, fam.c, hash, issued[1], issued[2], issued[3], issued[4], issued[5],
  rep[1], rep[2], rep[3], rep[4], grace_for }
