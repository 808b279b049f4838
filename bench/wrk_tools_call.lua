-- wrk script: post JSON-RPC tools/call requests to contact-mcp's streamable-HTTP replicas (driven by bench/loadgen.py).
--
-- BENCH_WRK_BODIES  a file of request bodies, one JSON-RPC request a line; each thread cycles through all of them,
--                   starting at its own offset (bench/loadgen.py writes them from bench/workloads.py)
-- BENCH_WRK_PORTS   the replicas' ports on 127.0.0.1, comma-separated: thread i talks to replica i % n (a
--                   connection stays on one replica, as behind a round-robin balancer with keep-alive)
-- BENCH_WRK_HEADERS the request headers, one "Name: value" a line (they depend on the protocol era)
--
-- A response that is not 200, or whose JSON-RPC answer is an error or a tool error, is counted; done() prints one
-- line "BENCH_WRK {json}" with the totals and latency percentiles, and "BENCH_WRK_ERROR ..." with the first error.

local threads = {}

local function split(text, separator)
  local parts = {}
  for part in string.gmatch(text, "[^" .. separator .. "]+") do
    table.insert(parts, part)
  end
  return parts
end

function setup(thread)
  local ports = split(os.getenv("BENCH_WRK_PORTS"), ",")
  local index = #threads
  table.insert(threads, thread)
  thread:set("index", index)
  thread.addr = wrk.lookup("127.0.0.1", ports[(index % #ports) + 1])[1]
end

function init(args)
  local headers = {}
  for _, line in ipairs(split(os.getenv("BENCH_WRK_HEADERS"), "\n")) do
    local name, value = string.match(line, "^([^:]+):%s*(.*)$")
    headers[name] = value
  end
  requests = {}
  for body in io.lines(os.getenv("BENCH_WRK_BODIES")) do
    local copy = {}
    for name, value in pairs(headers) do
      copy[name] = value
    end
    table.insert(requests, wrk.format("POST", nil, copy, body))
  end
  -- threads start at different offsets, so two of them rarely send the same write at the same time
  position = (index * 7919) % #requests
  tool_errors = 0
  first_error = ""
end

function request()
  position = position % #requests + 1
  return requests[position]
end

function response(status, headers, body)
  if status ~= 200 or string.find(body, '"isError":true', 1, true) or string.find(body, '"error":{', 1, true) then
    tool_errors = tool_errors + 1
    if first_error == "" then
      first_error = status .. " " .. string.sub(string.gsub(body, "%s+", " "), 1, 400)
    end
  end
end

function done(summary, latency, requests_)
  local errors, sample = 0, ""
  for _, thread in ipairs(threads) do
    errors = errors + thread:get("tool_errors")
    if sample == "" then
      sample = thread:get("first_error")
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_WRK {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f,'
      .. '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"tool_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout, errors
  ))
  if sample ~= "" then
    io.write("BENCH_WRK_ERROR " .. sample .. "\n")
  end
end
