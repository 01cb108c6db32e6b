-- wrk script: POST /boards/<board>/tasks with a unique title per request.
--   wrk ... -s post-tasks.lua URL -- /boards/<board>/tasks <listId>
-- Prints WRK_CREATED (answers 201) and WRK_OTHER (any other status).
local threads = {}
local next_tid = 1

function setup(thread)
    thread:set("tid", next_tid)
    next_tid = next_tid + 1
    table.insert(threads, thread)
end

function init(args)
    path = args[1]
    list = args[2]
    n = 0
    created = 0
    other = 0
    wrk.headers["Content-Type"] = "application/json"
end

function request()
    n = n + 1
    local body = string.format('{"listId":%s,"title":"wrk t%d n%d"}', list, tid, n)
    return wrk.format("POST", path, nil, body)
end

function response(status, headers, body)
    if status == 201 then
        created = created + 1
    else
        other = other + 1
    end
end

function done(summary, latency, requests)
    local c, o = 0, 0
    for _, t in ipairs(threads) do
        c = c + t:get("created")
        o = o + t:get("other")
    end
    io.write(string.format("WRK_CREATED %d\nWRK_OTHER %d\n", c, o))
end
