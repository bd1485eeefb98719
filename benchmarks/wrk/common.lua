-- Shared by native.lua and invocations.lua (loaded with dofile; WRK_LUA_DIR names this directory).
--
-- Pacing: with WRK_DELAY_MS set, every connection waits that many milliseconds after each response
-- before it sends the next request, so -c N offers at most N * 1000 / (WRK_DELAY_MS + latency) requests
-- a second whatever the server's capacity (wrk2 is not installed here; this is a closed-loop stand-in
-- for a fixed offered rate, and like plain wrk it does not correct for coordinated omission).
--
-- Report: at the end of a run, print one machine-readable line after wrk's own text report
--   WRK_JSON {"requests":..,"duration_us":..,"non2xx":..,"errors":{..},"latency_us":{"p50":..,...}}
-- which benchmarks/serving.py parses (wrk's text rounds and changes units).
local pause = tonumber(os.getenv("WRK_DELAY_MS") or "")
if pause and pause > 0 then
   function delay()
      return pause
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   local parts = {}
   for _, p in ipairs({50, 75, 90, 99, 99.9}) do
      parts[#parts + 1] = string.format('"p%s":%d', tostring(p), latency:percentile(p))
   end
   io.write(string.format(
      'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"non2xx":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},' ..
      '"latency_us":{%s,"mean":%.1f,"max":%d,"stdev":%.1f}}\n',
      summary.requests, summary.duration, summary.bytes, e.status,
      e.connect, e.read, e.write, e.timeout,
      table.concat(parts, ","), latency.mean, latency.max, latency.stdev))
end
