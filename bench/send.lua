-- wrk script: POST /emails with one recipient and about 2 KB of HTML.
local html = "<html><body><h1>Your receipt</h1>" .. string.rep("<p>Thank you for your order. Here is what you bought.</p>", 36) .. "</body></html>"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("OPENSEND_TOKEN")
local n = 0
request = function()
  n = n + 1
  local body = '{"from":"Acme <hello@acme.test>","to":"customer' .. n .. '@example.com","subject":"Receipt","html":"' .. html .. '"}'
  return wrk.format(nil, "/emails", nil, body)
end
