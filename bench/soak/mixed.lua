-- A mixed read/write load for bench/soak/run.sh: a verified citizen (TOKEN) lists and
-- submits permit applications, reads their profile and the parks' facilities; 5xx
-- answers are counted and printed at the end.
local token = os.getenv("TOKEN")
local auth = "Bearer " .. token
local counter = 0
local body = '{"permit_type":"fence","description":"Soak fence","property_address":"1 Load Street","department_code":"BLD"}'

request = function()
  counter = counter + 1
  local pick = counter % 10
  local headers = { ["Authorization"] = auth }
  if pick < 2 then
    headers["Content-Type"] = "application/json"
    return wrk.format("POST", "/api/v1/permits/applications", headers, body)
  elseif pick < 6 then
    return wrk.format("GET", "/api/v1/permits/applications?page_size=5", headers)
  elseif pick < 8 then
    return wrk.format("GET", "/api/v1/auth/me", headers)
  else
    return wrk.format("GET", "/api/v1/parks/facilities", headers)
  end
end

local errors = 0
response = function(status, headers, body)
  if status >= 500 then errors = errors + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("soak: %d requests, %d socket errors, p50 %.2f ms, p99 %.2f ms\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
  io.write(string.format("soak: non-2xx/3xx answers %d\n", summary.errors.status))
end
