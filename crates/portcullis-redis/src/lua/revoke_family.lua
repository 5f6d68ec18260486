-- Revoke one family if it is live (and, when ARGV[6] names a field, only if the family's user
-- ('u') or client ('c') is ARGV[7]). KEYS[1] the family's record. ARGV[4] the family, [5] the
-- reason. Returns '1' if this call revoked it.
local F = ARGV[4]
local fam = jget(fk(F, 'f'))
if not fam then return '0' end
if ARGV[6] ~= '' and fam[ARGV[6]] ~= ARGV[7] then return '0' end
if not live(fam) then return '0' end
revoke_fam(F, fam, ARGV[5])
return '1'
