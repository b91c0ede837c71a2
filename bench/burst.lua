-- wrk script for bench/run's `burst` and bench/nats: exactly COUNT POSTs over wrk's connections,
-- each with a body of its own, {"id":"TAG-n"} (`wrk ... URL -- COUNT TAG [IDS_FILE]`). delay()
-- hands out the COUNT sends, so a connection left without one waits (for an hour: the benchmark
-- ends wrk long before); a line on stdout marks the first send and the COUNT-th answer, which
-- the benchmark times. With IDS_FILE, the X-Hookwire-Run id of every 2xx answer is appended to
-- it, so the benchmark can check that each accepted delivery ran exactly once.
local count, tag, ids = 0, "", nil
local granted, sent, answered = 0, 0, 0

function init(args)
  count = tonumber(args[1])
  tag = args[2]
  if args[3] then
    ids = assert(io.open(args[3], "a"))
  end
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
  local body = string.format('{"id":"%s-%d"}', tag, sent)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  answered = answered + 1
  if ids and status >= 200 and status < 300 then
    for name, value in pairs(headers) do
      if string.lower(name) == "x-hookwire-run" then
        ids:write(value, "\n")
      end
    end
  end
  if answered == count then
    if ids then
      ids:flush()
    end
    io.write("burst: all answered\n")
    io.flush()
    wrk.thread:stop()
  end
end
