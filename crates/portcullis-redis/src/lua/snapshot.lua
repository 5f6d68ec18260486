-- Everything stored about a family: its record, then (member, record) pairs of its tokens.
-- KEYS[1] the family's record, KEYS[2] its token set. ARGV[4] the family.
local F = ARGV[4]
local fam = redis.call('GET', fk(F, 'f'))
if not fam then return {} end
local out = { fam }
for _, m in ipairs(redis.call('SMEMBERS', fk(F, 't'))) do
  local r = redis.call('GET', rk(F, string.sub(m, 1, 1), string.sub(m, 3)))
  if r then
    out[#out + 1] = m
    out[#out + 1] = r
  end
end
return out
