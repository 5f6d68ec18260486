-- Single node only: revoke every live family of a user or a client. KEYS[1] the owner's family
-- set. ARGV[5] 'u' or 'c', [6] the owner, [7] the reason. Families that are gone are dropped
-- from the set. Returns the families this call revoked.
local out = {}
for _, F in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local fam = jget(fk(F, 'f'))
  if not fam then
    redis.call('SREM', KEYS[1], F)
  elseif fam[ARGV[5]] == ARGV[6] and live(fam) then
    revoke_fam(F, fam, ARGV[7])
    out[#out + 1] = F
  end
end
return out
