-- pipeline.lua: wrk sends DEPTH requests in one write and reads their
-- responses in order (HTTP/1.1 pipelining), alternating GET /plaintext and
-- GET /json: wrk -s pipeline.lua URL -- DEPTH (default 16).
init = function(args)
   local depth = tonumber(args[1]) or 16
   local r = {}
   for i = 1, depth do
      if i % 2 == 1 then
         r[i] = wrk.format("GET", "/plaintext")
      else
         r[i] = wrk.format("GET", "/json")
      end
   end
   req = table.concat(r)
end

request = function()
   return req
end
