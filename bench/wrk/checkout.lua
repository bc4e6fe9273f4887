-- wrk script for the checkout benchmark (bench/run.py drives it).
--
-- Sends POST /v1/checkout/summary with a JSON body and, when BENCH_TOKEN is set,
-- "Authorization: Bearer <token>". BENCH_METHOD=GET sends a bare GET instead
-- (used to measure the load side's own ceiling). done() prints one line,
-- "WRK_JSON {...}", with the counts, the partial answers and latency percentiles
-- in microseconds.

local method = os.getenv("BENCH_METHOD") or "POST"
local token = os.getenv("BENCH_TOKEN") or ""

wrk.method = method
if method == "POST" then
  wrk.body = os.getenv("BENCH_BODY") or '{"cartId":"c-1001"}'
  wrk.headers["Content-Type"] = "application/json"
end
if token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

-- Count answers by status in every thread; done() adds them up (thread:get copies tables).
local threads = {}
statuses = {}
partial = 0  -- 2xx answers that say "partialData":true (an optional call fell back)

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status < 300 and body and string.find(body, '"partialData":true', 1, true) then
    partial = partial + 1
  end
end

local function partial_total()
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + (thread:get("partial") or 0)
  end
  return total
end

local function status_json()
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses") or {}) do
      total[status] = (total[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(total) do
    table.insert(parts, string.format('"%d":%d', status, count))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"stdev":%.1f,' ..
    '"p50":%d,"p90":%d,"p99":%d,"p999":%d},"statuses":%s,"partial":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, latency.stdev,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    status_json(), partial_total()))
end
