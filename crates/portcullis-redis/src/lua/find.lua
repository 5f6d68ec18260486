-- Find a token by its candidate hashes: its record and its family's, as stored (JSON).
-- KEYS: single node: the candidates' records; Cluster: the family's record and the candidates'
-- records. ARGV[5] kind (c, r, a), [6] number of candidates, [7..] candidates.
local kind = ARGV[5]
for _, c in ipairs(list(7, ARGV[6] + 0)) do
  local r = redis.call('GET', rk(ARGV[4], kind, c))
  if r then
    local F = ARGV[4]
    if SINGLE then F = cjson.decode(r).f end
    local fam = redis.call('GET', fk(F, 'f'))
    if not fam then return { 'N' } end
    return { 'F', F, fam, c, r }
  end
end
return { 'N' }
