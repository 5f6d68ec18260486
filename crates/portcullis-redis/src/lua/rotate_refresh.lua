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
local F, hash, tok, raw = locate('r', list(21, nc))
if not tok then return { 'N' } end
local fam = jget(fk(F, 'f'))
if not fam then return { 'N' } end
if fam.ra ~= nil then return { 'J', 'revoked' } end
if NOW >= num(tok.ea) or NOW >= num(fam.ex) then return { 'J', 'expired' } end
if fam.c ~= client then return { 'J', 'wrong_client' } end
local scope_req = nil
if ARGV[6] == '1' then
  scope_req = ARGV[7]
  if scope_req ~= fam.s then
    local have = {}
    for w in string.gmatch(fam.s, '[^ ]+') do have[w] = true end
    for w in string.gmatch(scope_req, '[^ ]+') do
      if not have[w] then return { 'J', 'scope' } end
    end
  end
end
local function replay()
  revoke_fam(F, fam, 'refresh_replay')
  return { 'P', F, fam.u, fam.c, hash, tok.g }
end
if tok.rv ~= nil then return replay() end
local grace_for = nil
local s = nil
if tok.ua ~= nil then
  local grace = tonumber(ARGV[8])
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
if ARGV[13] == '1' or ARGV[14] == '1' or ARGV[15] == '1' then
  local function matches(stored, from, n)
    if stored == nil then return true end
    local ok = false
    for i = 0, n - 1 do
      if ct_eq(ARGV[from + i], stored) then ok = true end
    end
    return ok
  end
  local base = 21 + nc
  mm_u = ARGV[13] == '1' and not matches(fam.bu, base, nu)
  mm_i = ARGV[14] == '1' and not matches(fam.bi, base + nu, ni)
  mm_d = ARGV[15] == '1' and not matches(fam.bd, base + nu + ni, nd)
end
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
local idle, accl = tonumber(ARGV[11]), tonumber(ARGV[12])
local gen = num(tok.g) + 1
-- a grace reissue replaces the earlier successor's generation
if s ~= nil then gen = num(s.g) end
local issued = insert_pair(F, fam, hash, gen, succ, acc, scope_req, idle, accl)
if not issued then return { 'D' } end
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
return { tag, F, fam.u, fam.c, hash, issued[1], issued[2], issued[3], issued[4], issued[5],
  reported, b(mm_u), b(mm_i), b(mm_d), grace_for or '' }
