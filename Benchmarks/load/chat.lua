-- wrk script for Benchmarks/load/run.sh: POSTs an OpenAI chat completion with a NEW prompt on
-- every request (thread id + counter in the text, so no cache can answer it), alternating short
-- and long prompts so a complexity router sees both tiers. The same script drives every target
-- (nginx stub, nginx proxy, sidecar), so the client-side cost is identical for all of them.
--
-- Environment:
--   BENCH_RUN_ID=N        part of every prompt (default: the start time in seconds)
--   BENCH_STREAM=1        send "stream": true (+ stream_options.include_usage); expect SSE bodies
--   BENCH_MODEL=gpt-4o    the "model" field sent
--   BENCH_LONG_EVERY=2    one request in N carries the long prompt (the rest are short)
--   BENCH_COUNT=0         do not define response() (cheaper client; see below)
--   BENCH_DISTINCT=16     only 16 distinct prompts per thread, repeated (cache hits after the first)
--
-- response() counts statuses, X-Model-Used, X-Sidecar-Cache, X-Query-Cost (header or trailer)
-- and 2xx bodies that lack the expected marker; done() prints one line "WRKJSON {...}".

local stream     = os.getenv("BENCH_STREAM") == "1"
local model      = os.getenv("BENCH_MODEL") or "gpt-4o"
local long_every = tonumber(os.getenv("BENCH_LONG_EVERY") or "2")
if long_every == nil or long_every < 1 then long_every = 2 end
local marker     = stream and "data: [DONE]" or "\"choices\""

local threads = {}

-- Without BENCH_DISTINCT, every wrk run asks new prompts: the thread id carries the start time,
-- so a measured run does not repeat its warm-up's prompts (which a cache would answer).
local run_id = 0
if (tonumber(os.getenv("BENCH_DISTINCT") or "0") or 0) == 0 then
   run_id = (tonumber(os.getenv("BENCH_RUN_ID") or "") or os.time()) % 1000000
end

function setup(thread)
   thread:set("tid", run_id * 1000 + #threads + 1)
   table.insert(threads, thread)
end

-- Globals below are per thread (each wrk thread has its own Lua state); done() reads them
-- with thread:get.
counter  = 0
statuses = {}
models   = {}
caches   = {}
costed   = 0
bad      = 0

local short_prompts = {
   "What is %d plus %d?",
   "Say hello to user number %d in one word, id %d.",
   "What is the capital of France? Ticket %d-%d.",
   "Translate good morning into Spanish. Ref %d/%d.",
   "Give me a synonym for happy, request %d.%d.",
}

local long_prompt =
   "Ticket %d-%d. You are a senior distributed-systems engineer reviewing a design. " ..
   "Analyze step by step, then prove or refute each claim with a rigorous argument. " ..
   "The system is a multi-region, event-sourced payment ledger: writes go through a Raft " ..
   "group per shard, reads are served from follower replicas with bounded staleness, and a " ..
   "saga coordinator compensates failed cross-shard transfers. Claims: (1) with 5 replicas " ..
   "per shard and quorum writes, the ledger stays linearizable during a single-region outage; " ..
   "(2) follower reads with a 200 ms staleness bound can never show a negative balance; " ..
   "(3) idempotency keys stored for 24 hours make client retries exactly-once. " ..
   "For each claim, compare the trade-offs of at least two alternative designs, estimate the " ..
   "latency and cost impact in a table, and identify the failure modes (clock skew, network " ..
   "partitions, split brain, duplicate delivery). Then write a Python function that, given a " ..
   "list of (shard, term, index, amount) log entries, detects conflicting commits and derives " ..
   "the minimal set of compensating transactions, with its asymptotic complexity, unit tests " ..
   "and a short explanation of the invariants it relies on. Finally, summarize the risks for " ..
   "an executive audience in three bullet points and recommend a migration plan with milestones."

local headers = {
   ["Content-Type"]  = "application/json",
   ["Authorization"] = "Bearer sk-bench-not-a-real-key",
}

local body_fmt
if stream then
   body_fmt = '{"model":"' .. model .. '","messages":[{"role":"system","content":"You are a helpful assistant."},' ..
              '{"role":"user","content":"%s"}],"stream":true,"stream_options":{"include_usage":true}}'
else
   body_fmt = '{"model":"' .. model .. '","messages":[{"role":"system","content":"You are a helpful assistant."},' ..
              '{"role":"user","content":"%s"}],"temperature":0.2}'
end

local distinct = tonumber(os.getenv("BENCH_DISTINCT") or "0") or 0

function request()
   counter = counter + 1
   if distinct > 0 then counter = (counter % distinct) + 1 end
   local prompt
   if counter % long_every == 0 then
      prompt = string.format(long_prompt, tid, counter)
   else
      prompt = string.format(short_prompts[(counter % #short_prompts) + 1], tid, counter)
   end
   return wrk.format("POST", nil, headers, string.format(body_fmt, prompt))
end

local function hdr(h, name, lname)
   return h[name] or h[lname]
end

local function count_response(status, h, body)
   statuses[status] = (statuses[status] or 0) + 1
   local m = hdr(h, "X-Model-Used", "x-model-used")
   if m then models[m] = (models[m] or 0) + 1 end
   local c = hdr(h, "X-Sidecar-Cache", "x-sidecar-cache")
   if c then caches[c] = (caches[c] or 0) + 1 end
   if hdr(h, "X-Query-Cost", "x-query-cost") then costed = costed + 1 end
   if status >= 200 and status < 300 and (body == nil or not string.find(body, marker, 1, true)) then
      bad = bad + 1
   end
end

-- BENCH_COUNT=0 leaves response() undefined: wrk then skips parsing headers/bodies into Lua
-- (less client CPU per request), and only wrk's own error counts remain.
if os.getenv("BENCH_COUNT") ~= "0" then
   response = count_response
end

local function merge(into, from)
   for k, v in pairs(from or {}) do into[k] = (into[k] or 0) + v end
end

local function json_counts(t)
   local parts = {}
   for k, v in pairs(t) do
      parts[#parts + 1] = string.format('"%s":%d', (tostring(k):gsub('[%c"\\]', '?')), v)
   end
   table.sort(parts)
   return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
   local st, md, ca, cost, nbad = {}, {}, {}, 0, 0
   for _, t in ipairs(threads) do
      merge(st, t:get("statuses"))
      merge(md, t:get("models"))
      merge(ca, t:get("caches"))
      cost = cost + (t:get("costed") or 0)
      nbad = nbad + (t:get("bad") or 0)
   end
   local non2xx = 0
   for code, n in pairs(st) do
      if code < 200 or code >= 300 then non2xx = non2xx + n end
   end
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"duration_us":%d,"requests":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d},' ..
      '"statuses":%s,"non2xx":%d,"bad_bodies":%d,"models":%s,"cache":%s,"with_cost":%d,"stream":%s}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency.stdev, latency.max,
      latency:percentile(50), latency:percentile(75), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9),
      json_counts(st), non2xx, nbad, json_counts(md), json_counts(ca), cost,
      stream and "true" or "false"))
end
