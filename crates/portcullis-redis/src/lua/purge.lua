-- Purge dead records, at most ARGV[5] of them.
-- Single node: one chunk of a purge bucket: KEYS[1] the bucket; ARGV[4] the member to start
-- after ('' = from the start), [6] the chunk size. Returns { removed, 'stop'|'more'|'end', the
-- last family done }.
-- Cluster: one family: KEYS[1] its record, KEYS[2] its token set; ARGV[4] the family. Returns
-- { removed, complete ('1'/'0'), gone ('1'/'0'), user, client, removed members... } so that the
-- caller can drop the pointers and index entries, which live in other slots.
-- (On a single node a token's record is found by its hash: deleting it deletes its pointer.)
local function purge_family(F, budget)
  local fam = jget(fk(F, 'f'))
  if not fam then
    -- expired (its TTL) or purged: nothing of it is left to count
    redis.call('DEL', fk(F, 't'))
    return 0, true, true, nil, {}
  end
  local dead = not live(fam)
  local doomed = {}
  local alive = 0
  for _, m in ipairs(redis.call('SMEMBERS', fk(F, 't'))) do
    local rec = jget(rk(F, string.sub(m, 1, 1), string.sub(m, 3)))
    if not rec then
      redis.call('SREM', fk(F, 't'), m)
    elseif dead or NOW >= num(rec.ea) or (string.sub(m, 1, 1) == 'a' and rec.rv ~= nil) then
      doomed[#doomed + 1] = m
    else
      alive = alive + 1
    end
  end
  local removed = 0
  local gone = {}
  for _, m in ipairs(doomed) do
    if removed >= budget then return removed, false, false, fam, gone end
    redis.call('DEL', rk(F, string.sub(m, 1, 1), string.sub(m, 3)))
    redis.call('SREM', fk(F, 't'), m)
    gone[#gone + 1] = m
    removed = removed + 1
  end
  if dead or alive == 0 then
    if removed >= budget then return removed, false, false, fam, gone end
    redis.call('DEL', fk(F, 'f'), fk(F, 't'))
    return removed + 1, true, true, fam, gone
  end
  return removed, true, false, fam, gone
end

local budget = ARGV[5] + 0
if not SINGLE then
  local removed, complete, gone, fam, members = purge_family(ARGV[4], budget)
  local out = { n2s(removed), complete and '1' or '0', gone and '1' or '0',
    fam and fam.u or '', fam and fam.c or '' }
  for _, m in ipairs(members) do out[#out + 1] = m end
  return out
end
local bucket = KEYS[1]
local after = ARGV[4]
local chunk = ARGV[6] + 0
local lo = '-'
if after ~= '' then lo = '(' .. after end
local fams = redis.call('ZRANGEBYLEX', bucket, lo, '+', 'LIMIT', 0, chunk)
local removed = 0
local last = after
for _, F in ipairs(fams) do
  local r, complete, gone, fam = purge_family(F, budget - removed)
  removed = removed + r
  if gone then
    redis.call('ZREM', bucket, F)
    if fam then
      redis.call('SREM', uk(fam.u), F)
      redis.call('SREM', ck(fam.c), F)
    end
  end
  if not complete then return { n2s(removed), 'stop', last } end
  last = F
end
if #fams < chunk then return { n2s(removed), 'end', last } end
return { n2s(removed), 'more', last }
