-- portcullis-redis rate limiter: portcullis_ratelimit::algorithm::decide in Lua.
--
-- Check (consume) or peek several keys atomically: admitted only if every check admits, and
-- then each consumes one unit; if any denies, none consumes and the admitting ones answer as
-- peeks. KEYS[i] the state of check i (all in one slot on Cluster: one hash tag per limiter).
-- ARGV[1] the caller's time in microseconds ('' = the server's TIME), ARGV[2] '1' to consume,
-- '0' to peek, ARGV[3] n, then 5 per check: algorithm (0 GCRA, 1 fixed window, 2 sliding
-- window), period, count, burst, emission interval (microseconds or counts).
-- State: 16 bytes (struct '>dII': expires_at, count, prev), with a TTL of expires_at - now
-- (at least a second).
-- Returns { allowed, then per check: allowed, remaining, reset_after, retry_after }.
-- Written for the cost of one call: a script's top level runs on every call, so only what the
-- common path needs is defined there (the sliding window's exact big-integer helpers are
-- created inside it, when it runs), and digits become numbers by arithmetic (one conversion;
-- tonumber makes two). Redis >= 5 replicates a script's effects, so reading TIME
-- before writing is allowed.
local NOW
if ARGV[1] == '' then
  local t = redis.call('TIME')
  NOW = t[1] * 1000000 + t[2]
else
  NOW = ARGV[1] + 0
end

-- floor(a / b) and a mod b, exact for 0 <= a < 2^52, 1 <= b < 2^52
local function idiv(a, b)
  local q = math.floor(a / b)
  local r = a - q * b
  while r < 0 do q = q - 1; r = r + b end
  while r >= b do q = q + 1; r = r - b end
  return q, r
end

-- Decide one check of algorithm alg (0 GCRA, 1 fixed window, 2 sliding window) with period P,
-- count L, burst B and emission interval T: returns allowed (1/0), remaining, reset_after,
-- retry_after, and the state to write (or nil).
local sliding
local function decide(alg, P, L, B, T, st, consume)
  if alg == 0 then
    -- GCRA: the state's time is the theoretical arrival time
    local tol = T * (B - 1)
    local d = 0
    if st then
      d = st[1] - NOW
      if d < 0 then d = 0 end
    end
    if d > tol then return 0, 0, d, d - tol, nil end
    local w = nil
    if consume then
      d = d + T
      w = { NOW + d, 0, 0 }
    end
    -- ceil(d / T) is exact in doubles: d is at most the span (below 2^50, see
    -- portcullis_ratelimit::MAX_SPAN_MICROS), far below 2^53
    local rem = B - math.ceil(d / T)
    if rem < 0 then rem = 0 end
    return 1, rem, d, 0, w
  elseif alg == 1 then
    -- fixed window, starting at the first request
    local e, c
    if st and st[1] > NOW then e = st[1]; c = st[2] else e = NOW + P; c = 0 end
    local left = e - NOW
    if c >= L then return 0, 0, left, left, nil end
    local w = nil
    if consume then
      c = c + 1
      w = { e, c, 0 }
    end
    local reset = left
    if c == 0 then reset = 0 end
    return 1, L - c, reset, 0, w
  end
  return sliding(P, L, st, consume)
end

sliding = function(P, L, st, consume)
  -- Non-negative integers of any size as little-endian arrays of 16-bit limbs: the sliding
  -- window multiplies counts (< 2^32) by periods (< 2^51), beyond a double's 2^53.
  local L16 = 65536
  local function big(n)
    local t = {}
    while n > 0 do
      local q = math.floor(n / L16)
      t[#t + 1] = n - q * L16
      n = q
    end
    return t
  end
  local function trim(t)
    local n = #t
    while n > 0 and t[n] == 0 do t[n] = nil; n = n - 1 end
    return t
  end
  local function bmul(a, b)
    local r = {}
    for i = 1, #a + #b + 1 do r[i] = 0 end
    for i = 1, #a do
      local carry = 0
      for j = 1, #b do
        local cur = r[i + j - 1] + a[i] * b[j] + carry
        carry = math.floor(cur / L16)
        r[i + j - 1] = cur - carry * L16
      end
      local k = i + #b
      while carry > 0 do
        local cur = r[k] + carry
        carry = math.floor(cur / L16)
        r[k] = cur - carry * L16
        k = k + 1
      end
    end
    return trim(r)
  end
  local function badd(a, b)
    local r = {}
    local carry = 0
    for i = 1, math.max(#a, #b) + 1 do
      local cur = (a[i] or 0) + (b[i] or 0) + carry
      carry = math.floor(cur / L16)
      r[i] = cur - carry * L16
    end
    return trim(r)
  end
  local function bcmp(a, b)
    if #a ~= #b then if #a < #b then return -1 end return 1 end
    for i = #a, 1, -1 do
      if a[i] ~= b[i] then if a[i] < b[i] then return -1 end return 1 end
    end
    return 0
  end
  local function mul(x, y) return bmul(big(x), big(y)) end
  -- floor(c * p / a) when it is below p (callers check), exact: a double estimate, then fixed
  local function floordiv_below(c, p, a)
    local target = mul(c, p)
    local q = math.floor(c * p / a)
    if q < 0 then q = 0 end
    while q > 0 and bcmp(mul(q, a), target) > 0 do q = q - 1 end
    while bcmp(mul(q + 1, a), target) <= 0 do q = q + 1 end
    return q
  end
  -- ceil(w / p) for a big w with a small quotient
  local function ceildiv_big(w, wd, p)
    local q = math.ceil(wd / p)
    if q < 0 then q = 0 end
    while bcmp(mul(q, p), w) < 0 do q = q + 1 end
    while q > 0 and bcmp(mul(q - 1, p), w) >= 0 do q = q - 1 end
    return q
  end
  local index, e = idiv(NOW, P)
  local curr, prev = 0, 0
  if st then
    local stored = idiv(st[1], P) - 2
    if stored < 0 then stored = 0 end
    if stored > index then
      -- the clock went backwards: read the state as of the start of its own window
      index = stored
      e = 0
    end
    if stored == index then
      curr = st[2]
      prev = st[3]
    elseif stored + 1 == index then
      prev = st[2]
    end
  end
  local weighted = mul(prev, P - e)
  local estimate = ceildiv_big(weighted, prev * (P - e), P)
  local virtual_now = index * P + e
  local ahead = virtual_now - NOW
  if ahead < 0 then ahead = 0 end
  local window_end = (index + 1) * P
  local function reset(c)
    if c > 0 then
      local r = window_end + P - NOW
      if r < 0 then r = 0 end
      return r
    elseif prev > 0 then
      local r = window_end - NOW
      if r < 0 then r = 0 end
      return r
    end
    return 0
  end
  local admitted = bcmp(badd(weighted, mul(curr + 1, P)), mul(L, P)) <= 0
  if not admitted then
    local in_this = nil
    if curr < L and prev > 0 then
      local e1 = 0
      if L - curr - 1 < prev then
        e1 = P - floordiv_below(L - curr - 1, P, prev)
      end
      if e1 < P then
        in_this = e1 - e
        if in_this < 0 then in_this = 0 end
      end
    end
    local retry = in_this
    if retry == nil then
      local e2 = 0
      if curr > 0 and L - 1 < curr then
        e2 = P - floordiv_below(L - 1, P, curr)
      end
      retry = (P - e) + e2
    end
    return 0, 0, reset(curr), retry + ahead, nil
  end
  local w = nil
  if consume then
    curr = curr + 1
    w = { (index + 2) * P, curr, prev }
  end
  local rem = L - curr - estimate
  if rem < 0 then rem = 0 end
  return 1, rem, reset(curr), 0, w
end

-- the state: 16 bytes, struct '>dII': expires_at (a double, exact below 2^53), count, prev
local function load(key)
  local v = redis.call('GET', key)
  if not v then return nil end
  if #v ~= 16 then error({ err = 'PCCORRUPT unreadable rate-limit state' }) end
  local e, c, p = struct.unpack('>dII', v)
  return { e, c, p }
end
-- The TTL is the state's remaining life, at least a second: a state past its expiry reads as
-- none anyway (decide treats it so), and a floor keeps a state written a microsecond before its
-- end from vanishing before the same instant's next request on a clock that stands still.
local function store(key, w)
  local ms = math.ceil((w[1] - NOW) / 1000)
  if ms < 1000 then ms = 1000 end
  redis.call('SET', key, struct.pack('>dII', w[1], w[2], w[3]), 'PX', ms)
end

local consume = ARGV[2] == '1'
local n = ARGV[3] + 0
if n == 1 then
  -- one key: no bookkeeping
  local st = load(KEYS[1])
  local a, rem, reset, retry, w = decide(ARGV[4] + 0, ARGV[5] + 0, ARGV[6] + 0,
    ARGV[7] + 0, ARGV[8] + 0, st, consume)
  if w then store(KEYS[1], w) end
  return { a, a, rem, reset, retry }
end
local function check(i, st, consume)
  local b = 3 + (i - 1) * 5
  return decide(ARGV[b + 1] + 0, ARGV[b + 2] + 0, ARGV[b + 3] + 0,
    ARGV[b + 4] + 0, ARGV[b + 5] + 0, st, consume)
end
local stored = {}
local pending = {}
local out = { 1 }
for i = 1, n do
  local k = KEYS[i]
  if stored[k] == nil then stored[k] = load(k) or false end
  local st = pending[k]
  if st == nil then st = stored[k] or nil end
  local allowed, rem, reset, retry, w = check(i, st, consume)
  if w then pending[k] = w end
  if allowed == 0 then out[1] = 0 end
  out[#out + 1] = allowed
  out[#out + 1] = rem
  out[#out + 1] = reset
  out[#out + 1] = retry
end
if out[1] == 1 then
  for k, w in pairs(pending) do store(k, w) end
else
  -- nothing consumed: the checks that would have admitted answer as peeks
  for i = 1, n do
    local b = 1 + (i - 1) * 4
    if out[b + 1] == 1 then
      out[b + 1], out[b + 2], out[b + 3], out[b + 4] = check(i, stored[KEYS[i]] or nil, false)
    end
  end
end
return out
