-- Store a new family with its authorization code.
-- KEYS: single node: the family's record and token set, the code's record, the user's and the
-- client's family sets and the purge bucket; Cluster: the first three (the caller writes the
-- code's pointer and the indexes, each in its own slot, in the same round trip).
-- ARGV[5] the family record (JSON), [6] the code hash, [7] the code record (JSON), [8] the
-- purge bucket key.
-- With the server's TIME, the family's and the code's times are moved by (TIME - created_at):
-- every time in the store is then the server's.
local F = ARGV[4]
if redis.call('EXISTS', fk(F, 'f')) == 1 then return 'D' end
local fam = cjson.decode(ARGV[5])
local ch = ARGV[6]
local code = cjson.decode(ARGV[7])
if ARGV[2] == '' then
  local shift = NOW - num(fam.ca)
  fam.ca = n2s(NOW)
  fam.ex = n2s(num(fam.ex) + shift)
  code.ia = n2s(num(code.ia) + shift)
  code.ea = n2s(num(code.ea) + shift)
end
code.f = F
local ex = num(fam.ex)
if not redis.call('SET', rk(F, 'c', ch), cjson.encode(code), 'PX', ttl(num(code.ea)), 'NX') then
  return 'D'
end
redis.call('SET', fk(F, 'f'), cjson.encode(fam), 'PX', ttl(ex))
redis.call('SADD', fk(F, 't'), 'c:' .. ch)
redis.call('PEXPIRE', fk(F, 't'), ttl(ex))
if SINGLE then
  idx_add(uk(fam.u), F, ex, false)
  idx_add(ck(fam.c), F, ex, false)
  idx_add(ARGV[8], F, ex, true)
end
return 'OK'
