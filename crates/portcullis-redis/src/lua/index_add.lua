-- Cluster only: add a family to an index (user's or client's set, or a purge bucket) and make
-- the index outlive it. KEYS[1] the index; ARGV[4] the family id, [5] its expiry, [6] 'z' for
-- a purge bucket (lexical sorted set), 's' for a set.
idx_add(KEYS[1], ARGV[4], ARGV[5] + 0, ARGV[6] == 'z')
return 'OK'
