-- wrk script for bench/run's `burst`: exactly COUNT POSTs over wrk's connections, each with a
-- body of its own, {"id":"TAG-n"} (`wrk ... URL -- COUNT TAG`). delay() hands out the COUNT
-- sends, so a connection left without one waits (for an hour: bench/run ends wrk long before);
-- a line on stdout marks the first send and the COUNT-th answer, which bench/run times.
local count, tag = 0, ""
local granted, sent, answered = 0, 0, 0

function init(args)
  count = tonumber(args[1])
  tag = args[2]
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
  if answered == count then
    io.write("burst: all answered\n")
    io.flush()
    wrk.thread:stop()
  end
end
