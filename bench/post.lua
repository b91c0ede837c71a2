-- wrk script for bench/run: POST the file named by the first script argument
-- (`wrk ... URL -- FILE`), or an empty body when there is none. wrk adds Content-Length;
-- other headers come from wrk's -H flags.
wrk.method = "POST"

function init(args)
  if args[1] then
    local file = assert(io.open(args[1], "rb"))
    wrk.body = file:read("*a")
    file:close()
  end
end
