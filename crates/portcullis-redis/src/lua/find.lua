-- Find a token by its candidate hashes: its record and its family's, as stored (JSON).
-- KEYS: single node: the candidates' pointers; Cluster: the family's record and the
-- candidates' records. ARGV[5] kind (c, r, a), [6] number of candidates, [7..] candidates.
local kind = ARGV[5]
local cands = list(7, tonumber(ARGV[6]))
local F = resolve(kind, cands)
if not F then return { 'N' } end
local fam = redis.call('GET', fk(F, 'f'))
if not fam then return { 'N' } end
for _, c in ipairs(cands) do
  local r = redis.call('GET', fk(F, kind .. ':' .. c))
  if r then return { 'F', F, fam, c, r } end
end
return { 'N' }
