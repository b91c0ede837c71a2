-- wrk script for bench/nats: exactly COUNT POSTs of an empty JSON object over wrk's connections
-- (`wrk -t 1 ... URL -- COUNT IDS_FILE`), then stop. The X-Hookwire-Run id of every 2xx answer
-- is appended to IDS_FILE, so bench/nats can check that each accepted delivery ran exactly
-- once. delay() hands out the COUNT sends; a line on stdout marks the first send and the
-- COUNT-th answer, which bench/nats times.
local count, ids = 0, nil
local granted, sent, answered = 0, 0, 0

function init(args)
  count = tonumber(args[1])
  ids = assert(io.open(args[2], "a"))
end

function delay()
  if granted < count then
    granted = granted + 1
    return 0
  end
  return 3600000
end

function request()
  sent = sent + 1
  if sent == 1 then
    io.write("burst: first request\n")
    io.flush()
  end
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, "{}")
end

function response(status, headers, body)
  answered = answered + 1
  if status >= 200 and status < 300 then
    for name, value in pairs(headers) do
      if string.lower(name) == "x-hookwire-run" then
        ids:write(value, "\n")
      end
    end
  end
  if answered == count then
    ids:flush()
    io.write("burst: all answered\n")
    io.flush()
    wrk.thread:stop()
  end
end
