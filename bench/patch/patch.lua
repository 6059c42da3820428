-- A verified citizen changes their own phone number over and over (issue 24: the write
-- path plus citizen.updated to every module's citizen cache). TOKEN and ID from the env.
local token = os.getenv("TOKEN")
local path = "/api/v1/auth/citizens/" .. os.getenv("ID")
local counter = 0

request = function()
  counter = counter + 1
  local body = string.format('{"phone":"+1 555 %07d"}', counter % 10000000)
  return wrk.format("PATCH", path, {["Authorization"] = "Bearer " .. token,
                                    ["Content-Type"] = "application/json"}, body)
end

local bad = 0
response = function(status)
  if status ~= 200 then bad = bad + 1 end
end

done = function()
  io.write(string.format("non-200 answers %d\n", bad))
end
