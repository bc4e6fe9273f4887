"""The breaker rules of ``breaker.py``, again in Lua, one atomic script per change.

Every script loads the record (hash ``KEYS[1]``, failure times in sorted set
``KEYS[2]``, the rate rule's calls and failures per second in hash ``KEYS[3]`` as
``c<second>`` and ``f<second>``), applies one rule, saves what changed and replies
``{allowed, probe, epoch, state, opened_at, forced, from, to, reason, ...}``
so the caller learns the new state (and any transitions) in the same round
trip. Time comes in as an argument, so a fake clock drives Redis too.

ARGV: now, failure_threshold, window_s, open_s, half_open_probes,
window label, open label, min_calls (0: no rate rule), failure_rate, successes not
yet sent (``second:count,...``), then per script: epoch, probe, failed | action.
"""

from __future__ import annotations

_PRELUDE = """
local now = tonumber(ARGV[1])
local threshold = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local open_s = tonumber(ARGV[4])
local probes = tonumber(ARGV[5])
local h = redis.call('HMGET', KEYS[1], 'state', 'opened_at', 'epoch', 'issued', 'ok', 'forced')
local st = {state = h[1] or 'closed', opened_at = tonumber(h[2]) or 0, epoch = tonumber(h[3]) or 0,
            issued = tonumber(h[4]) or 0, ok = tonumber(h[5]) or 0, forced = h[6] == '1'}
local changes = {}
local dirty = false
local function move(to, reason)
  table.insert(changes, st.state); table.insert(changes, to); table.insert(changes, reason)
  st.state = to; st.epoch = st.epoch + 1; st.issued = 0; st.ok = 0; dirty = true
end
local min_calls, rate = tonumber(ARGV[8]), tonumber(ARGV[9])
local function open(reason)
  move('open', reason); st.opened_at = now; redis.call('DEL', KEYS[2], KEYS[3])
end
local function rate_count(second, calls, failed)
  redis.call('HINCRBY', KEYS[3], 'c' .. second, calls)
  if failed > 0 then redis.call('HINCRBY', KEYS[3], 'f' .. second, failed) end
  redis.call('PEXPIRE', KEYS[3], math.ceil(window * 1000) + 2000)
end
local function rate_check()
  if min_calls <= 0 or st.state ~= 'closed' or st.forced then return end
  local all = redis.call('HGETALL', KEYS[3])
  local horizon = math.floor(now) - window
  local calls, failed = 0, 0
  for i = 1, #all, 2 do
    if tonumber(string.sub(all[i], 2)) <= horizon then
      redis.call('HDEL', KEYS[3], all[i])
    elseif string.sub(all[i], 1, 1) == 'c' then
      calls = calls + tonumber(all[i + 1])
    else
      failed = failed + tonumber(all[i + 1])
    end
  end
  if calls >= min_calls and failed * 100 >= rate * calls then
    open(math.floor(failed * 100 / calls) .. '% of ' .. calls .. ' calls failed within ' .. ARGV[6])
  end
end
if min_calls > 0 and st.state == 'closed' and not st.forced and ARGV[10] ~= '' then
  for second, count in string.gmatch(ARGV[10], '(%d+):(%d+)') do rate_count(second, tonumber(count), 0) end
  rate_check()
end
local function reply(allowed, probe)
  if dirty then
    redis.call('HSET', KEYS[1], 'state', st.state, 'opened_at', string.format('%.6f', st.opened_at),
               'epoch', st.epoch, 'issued', st.issued, 'ok', st.ok, 'forced', st.forced and '1' or '0')
    redis.call('PEXPIRE', KEYS[1], 604800000)
  end
  local out = {allowed, probe, st.epoch, st.state, string.format('%.6f', st.opened_at), st.forced and 1 or 0}
  for _, v in ipairs(changes) do table.insert(out, v) end
  return out
end
"""

ACQUIRE = (
    _PRELUDE
    + """
if st.state == 'open' and not st.forced and now >= st.opened_at + open_s then
  move('half_open', 'open for ' .. ARGV[7])
end
if st.state == 'closed' then return reply(1, 0) end
if st.state == 'half_open' and st.issued < probes then
  st.issued = st.issued + 1; dirty = true
  return reply(1, 1)
end
return reply(0, 0)
"""
)

RECORD = (
    _PRELUDE
    + """
local epoch, probe, failed = tonumber(ARGV[11]), ARGV[12] == '1', ARGV[13] == '1'
if epoch ~= st.epoch or st.forced then return reply(0, 0) end
if st.state == 'closed' and min_calls > 0 then
  rate_count(math.floor(now), 1, failed and 1 or 0)
  rate_check()
end
if st.state == 'closed' and failed then
  local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  dirty = true
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.6f', now - window))
  redis.call('ZADD', KEYS[2], now, string.format('%.6f', now) .. ':' .. seq)
  redis.call('PEXPIRE', KEYS[2], math.ceil(window * 1000) + 1000)
  local count = redis.call('ZCARD', KEYS[2])
  if count >= threshold then open(count .. ' failures within ' .. ARGV[6]) end
elseif st.state == 'half_open' and probe then
  if failed then
    open('probe failed')
  else
    st.ok = st.ok + 1; dirty = true
    if st.ok >= probes then
      move('closed', st.ok .. ' probes succeeded'); redis.call('DEL', KEYS[2], KEYS[3])
    end
  end
end
return reply(0, 0)
"""
)

RELEASE = (
    _PRELUDE
    + """
if tonumber(ARGV[11]) == st.epoch and st.state == 'half_open' and st.issued > 0 then
  st.issued = st.issued - 1; dirty = true
end
return reply(0, 0)
"""
)

ADMINISTER = (
    _PRELUDE
    + """
local action = ARGV[11]
if action == 'force_open' then
  open('forced open')
else
  move('closed', action == 'force_closed' and 'forced closed' or 'reset'); redis.call('DEL', KEYS[2], KEYS[3])
end
st.forced = action ~= 'reset'
return reply(0, 0)
"""
)

READ = """
local h = redis.call('HMGET', KEYS[1], 'state', 'opened_at', 'epoch', 'issued', 'ok', 'forced')
local count = redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[1], '+inf')
return {h[1] or 'closed', h[2] or '0', h[3] or '0', h[4] or '0', h[5] or '0', h[6] or '0', count}
"""

# The state as it is, for a process's local snapshot: no transition, no probe issued;
# like every script it sends this process's pending successes (rate rule) first.
# ``RedisBreakerStore`` sends one per service in one pipeline (one round trip).
PEEK = (
    _PRELUDE
    + """
return reply(st.state == 'closed' and 1 or 0, 0)
"""
)
