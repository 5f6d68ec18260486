-- RFC 7009 revocation of one token by its client: a code or refresh token revokes its family,
-- an access token only itself. KEYS: as find. ARGV[5] kind, [6] client, [7] number of
-- candidates, [8..] candidates.
local kind = ARGV[5]
local client = ARGV[6]
local F, hash, rec = locate(kind, list(8, ARGV[7] + 0))
if not rec then return { 'N' } end
local fam = jget(fk(F, 'f'))
if not fam then return { 'N' } end
local active
if kind == 'a' then
  active = live(fam) and rec.rv == nil and NOW < num(rec.ea)
else
  active = live(fam) and NOW < num(rec.ea)
end
if not active then return { 'I' } end
if fam.c ~= client then return { 'W' } end
if kind == 'a' then
  rec.rv = n2s(NOW)
  jkeep(rk(F, 'a', hash), rec)
  return { 'V', F, '0' }
end
revoke_fam(F, fam, 'token_revoked')
return { 'V', F, '1' }
