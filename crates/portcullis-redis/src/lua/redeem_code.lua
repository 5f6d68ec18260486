-- Redeem an authorization code: decide::code, then mark it used, record the binding and store
-- the first refresh token and access token; or, on a valid replay, revoke the family.
-- KEYS: single node: the candidates' records and the new tokens'; Cluster: the family's record
-- and token set, the candidates' records and the new tokens' (all in the family's slot).
-- ARGV[5] client, [6] '1' if a redirect_uri was sent, [7] redirect_uri, [8] PKCE proof
-- ('A' absent, 'M' malformed, 'P' present), [9] S256 of the verifier, [10] '1' if plain is
-- allowed, [11..13] binding hashes (user agent, IP prefix, device; '' = none), [14] refresh
-- hash, [15] access hash, [16] refresh idle lifetime, [17] access lifetime, [18] number of
-- candidates, [19..] candidate hashes.
local client = ARGV[5]
local F, hash, code = locate('c', list(19, ARGV[18] + 0))
if not code then return reply({ 'N' }) end
local fam = jget(fk(F, 'f'))
if not fam then return reply({ 'N' }) end
if fam.ra ~= nil then return reply({ 'J', 'revoked' }) end
if NOW >= num(code.ea) or NOW >= num(fam.ex) then return reply({ 'J', 'expired' }) end
if fam.c ~= client then return reply({ 'J', 'wrong_client' }) end
if code.ru == nil or ARGV[6] ~= '1' or ARGV[7] ~= code.ru then return reply({ 'J', 'redirect' }) end
-- PKCE, the table of decide::pkce
local proof = ARGV[8]
if code.cm == nil then
  if proof ~= 'A' then return reply({ 'J', 'pkce', 'unexpected' }) end
else
  if proof == 'A' then return reply({ 'J', 'pkce', 'missing' }) end
  if proof == 'M' then return reply({ 'J', 'pkce', 'malformed' }) end
  local ok = false
  if code.cm == 'S256' then
    ok = ct_eq(ARGV[9], code.cv)
  elseif code.cm == 'plain' then
    -- the S256 of the plain challenge, compared with the S256 of the verifier: equal exactly
    -- when verifier == challenge, and the verifier itself never travels to Redis
    ok = ARGV[10] == '1' and ct_eq(ARGV[9], code.cp)
  end
  if not ok then return reply({ 'J', 'pkce', 'mismatch' }) end
end
if code.ua ~= nil then
  revoke_fam(F, fam, 'code_replay')
  return reply({ 'P', F, fam.u, fam.c, hash, '0' })
end
local succ, acc = ARGV[14], ARGV[15]
local issued = insert_pair(F, fam, num(fam.ex), hash, 1, succ, acc, nil, ARGV[16] + 0, ARGV[17] + 0)
if not issued then return reply({ 'D' }) end
fam.bu = nil
fam.bi = nil
fam.bd = nil
if ARGV[11] ~= '' then fam.bu = ARGV[11] end
if ARGV[12] ~= '' then fam.bi = ARGV[12] end
if ARGV[13] ~= '' then fam.bd = ARGV[13] end
jkeep(fk(F, 'f'), fam)
code.ua = nows()
code.su = succ
jkeep(rk(F, 'c', hash), code)
return reply({ 'R', F, fam.u, fam.c, hash, issued })
