-- wrk script for bench/run.py: wrk -t2 -c64 -d10s --latency -s bench/scenario.lua URL -- SPEC
--
-- SPEC is a tab-separated file written by run.py (see write_spec there):
--   method<TAB>GET|PATCH|POST
--   scenario<TAB>name                 sent as X-Bench-Scenario (the bare app answers by it)
--   body<TAB>{... "{ID}" ...}         optional; {ID} becomes a new id on every request
--   id_prefix<TAB>bench-xxxx-         prefix of the generated ids (a second script argument,
--                                     given per run, replaces it: ids stay unique across runs)
--   req<TAB>/path?query<TAB>Bearer …  one or more; the requests cycle through them
-- At the end one line "BENCH_JSON {...}" carries the figures run.py reads.

local method = "GET"
local scenario = ""
local body_head, body_tail = nil, nil  -- body_tail is nil when the body has no {ID}
local id_prefix = "bench-"
local reqs = {}
local idx = 0
local counter = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

local function split_tabs(line)
  local out = {}
  for field in string.gmatch(line, "[^\t]+") do
    table.insert(out, field)
  end
  return out
end

function init(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    local fields = split_tabs(line)
    local key = fields[1]
    if key == "method" then
      method = fields[2]
    elseif key == "scenario" then
      scenario = fields[2]
    elseif key == "id_prefix" then
      id_prefix = fields[2]
    elseif key == "body" then
      local at = string.find(fields[2], "{ID}", 1, true)
      if at then
        body_head = string.sub(fields[2], 1, at - 1)
        body_tail = string.sub(fields[2], at + 4)
      else
        body_head = fields[2]
      end
    elseif key == "req" then
      table.insert(reqs, {path = fields[2], auth = fields[3]})
    end
  end
  f:close()
  if args[2] then
    id_prefix = args[2]
  end
  -- every thread starts at a different place in the list
  idx = ((thread_id or 1) * 7919) % #reqs
end

function request()
  idx = idx % #reqs + 1
  local r = reqs[idx]
  local headers = {["Authorization"] = r.auth, ["X-Bench-Scenario"] = scenario}
  local body = nil
  if body_head ~= nil then
    if body_tail ~= nil then
      counter = counter + 1
      body = body_head .. id_prefix .. (thread_id or 1) .. "-" .. counter .. body_tail
    else
      body = body_head
    end
    headers["Content-Type"] = "application/json"
  end
  return wrk.format(method, r.path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "errors_status": %d, ' ..
    '"errors_connect": %d, "errors_read": %d, "errors_write": %d, "errors_timeout": %d, ' ..
    '"p50_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50.0), latency:percentile(99.0), latency.mean, latency.max))
end
