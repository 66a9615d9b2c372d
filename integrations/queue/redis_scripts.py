"""The Redis store's Lua scripts: each store operation is one script, so it runs atomically on the server
(no other client's command interleaves) and in one round trip.

Keys of queue `q` under prefix `p` (the hash tag keeps them in one Redis Cluster slot):

| key                 | type   | holds                                                                  |
|---------------------|--------|------------------------------------------------------------------------|
| `p:{q}:meta`        | hash   | `paused` ("1"), `next_id` (job numbering)                              |
| `p:{q}:wait`        | list   | waiting job ids: new ones pushed left, taken from the right (the front) |
| `p:{q}:active`      | zset   | active job ids, scored by lock expiry (ms)                             |
| `p:{q}:delayed`     | zset   | delayed job ids, scored by due time (ms)                               |
| `p:{q}:completed`   | zset   | completed job ids, scored by finish time (ms)                          |
| `p:{q}:failed`      | zset   | failed job ids, scored by finish time (ms)                             |
| `p:{q}:starts`      | zset   | the rate limiter's window: one member per job start, scored by its time |
| `p:{q}:job:<id>`    | hash   | the job: name, data, state, attempts, backoff, counters, times, token   |

Job keys are built inside the scripts from the prefix (ARGV[1]), as BullMQ's scripts do: the ids a
claim takes are not known before it runs. Times arrive as ARGV from the caller's clock; the scripts
never read the server's clock, so the queue runs on virtual time too. Absent optional values are "".
"""

from __future__ import annotations

_TRIM = """
local function trim(zkey, P, now, age, count, limit)
  local removed = 0
  local function drop(ids)
    for _, id in ipairs(ids) do
      redis.call("DEL", P .. "job:" .. id)
      redis.call("ZREM", zkey, id)
    end
    removed = removed + #ids
  end
  if age ~= "" then
    drop(redis.call("ZRANGEBYSCORE", zkey, "-inf", "(" .. (now - tonumber(age)), "LIMIT", 0, limit))
  end
  if count ~= "" and (limit < 0 or removed < limit) then
    local excess = redis.call("ZCARD", zkey) - tonumber(count)
    if limit >= 0 then excess = math.min(excess, limit - removed) end
    if excess > 0 then drop(redis.call("ZRANGE", zkey, 0, excess - 1)) end
  end
  return removed
end
"""

# KEYS: meta, wait, delayed. ARGV: prefix, then 9 per job: id ("" = number it), name, data, attempts,
# backoff kind, backoff delay ms, backoff jitter, created ms, due ms ("" = now).
# Returns per job {1, id} when added, {0, id, fields} when the id was taken.
ADD = """
local P = ARGV[1]
local out = {}
for i = 2, #ARGV, 9 do
  local id = ARGV[i]
  local key
  local taken = false
  if id == "" then
    id = tostring(redis.call("HINCRBY", KEYS[1], "next_id", 1))
    key = P .. "job:" .. id
  else
    key = P .. "job:" .. id
    taken = redis.call("EXISTS", key) == 1
  end
  if taken then
    table.insert(out, {0, id, redis.call("HGETALL", key)})
  else
    local created = ARGV[i + 7]
    local due = ARGV[i + 8]
    local state = "waiting"
    if due ~= "" and tonumber(due) > tonumber(created) then state = "delayed" end
    redis.call("HSET", key, "name", ARGV[i + 1], "data", ARGV[i + 2], "state", state, "attempts", ARGV[i + 3],
      "bkind", ARGV[i + 4], "bdelay", ARGV[i + 5], "bjitter", ARGV[i + 6], "made", 0, "stalled", 0,
      "created", created)
    if state == "delayed" then
      redis.call("HSET", key, "due", due)
      redis.call("ZADD", KEYS[3], due, id)
    else
      redis.call("LPUSH", KEYS[2], id)
    end
    table.insert(out, {1, id})
  end
end
return out
"""

# KEYS: the job's hash. Returns its fields, flat.
GET = """
return redis.call("HGETALL", KEYS[1])
"""

# KEYS: meta, wait, delayed, active, starts. ARGV: prefix, now, token, lock until, limit, rate max, rate window,
# global concurrency. Returns {jobs {{id, fields}...}, promoted {id, name, ...}, wake (-1 none), paused, limited}.
CLAIM = """
local P = ARGV[1]
local now = tonumber(ARGV[2])
local promoted = {}
local due = redis.call("ZRANGEBYSCORE", KEYS[3], "-inf", ARGV[2])
for _, id in ipairs(due) do
  local key = P .. "job:" .. id
  redis.call("LPUSH", KEYS[2], id)
  redis.call("HSET", key, "state", "waiting")
  redis.call("HDEL", key, "due")
  table.insert(promoted, id)
  table.insert(promoted, redis.call("HGET", key, "name"))
end
if #due > 0 then redis.call("ZREMRANGEBYSCORE", KEYS[3], "-inf", ARGV[2]) end
local paused = redis.call("HGET", KEYS[1], "paused") == "1"
local jobs = {}
local wake = -1
local limited = 0
local n = tonumber(ARGV[5])
if not paused then
  if ARGV[6] ~= "" then
    local max = tonumber(ARGV[6])
    local window = tonumber(ARGV[7])
    redis.call("ZREMRANGEBYSCORE", KEYS[5], "-inf", now - window)
    local count = redis.call("ZCARD", KEYS[5])
    if count >= max then
      n = 0
      if redis.call("LLEN", KEYS[2]) > 0 then
        limited = 1
        wake = tonumber(redis.call("ZRANGE", KEYS[5], 0, 0, "WITHSCORES")[2]) + window
      end
    else
      n = math.min(n, max - count)
    end
  end
  if ARGV[8] ~= "" and n > 0 then n = math.min(n, tonumber(ARGV[8]) - redis.call("ZCARD", KEYS[4])) end
  if n > 0 then
    local ids = redis.call("RPOP", KEYS[2], n)
    if ids then
      for _, id in ipairs(ids) do
        local key = P .. "job:" .. id
        redis.call("HSET", key, "state", "active", "token", ARGV[3], "processed", ARGV[2])
        redis.call("ZADD", KEYS[4], ARGV[4], id)
        if ARGV[6] ~= "" then redis.call("ZADD", KEYS[5], ARGV[2], ARGV[3] .. ":" .. id) end
        table.insert(jobs, {id, redis.call("HGETALL", key)})
      end
    end
  end
end
local nxt = redis.call("ZRANGE", KEYS[3], 0, 0, "WITHSCORES")
if #nxt > 0 then
  local t = tonumber(nxt[2])
  if wake < 0 or t < wake then wake = t end
end
return {jobs, promoted, wake, paused and 1 or 0, limited}
"""

# KEYS: active. ARGV: prefix, until, then pairs id, token. Returns the ids whose lock is lost.
EXTEND = """
local lost = {}
for i = 3, #ARGV, 2 do
  local s = redis.call("HMGET", ARGV[1] .. "job:" .. ARGV[i], "state", "token")
  if s[1] == "active" and s[2] == ARGV[i + 1] then
    redis.call("ZADD", KEYS[1], ARGV[2], ARGV[i])
  else
    table.insert(lost, ARGV[i])
  end
end
return lost
"""

# KEYS: active, completed. ARGV: prefix, now, keep age ms, keep count, then triples id, token, result.
# Returns {ok (1/0) per job..., removed}.
COMPLETE = _TRIM + """
local P = ARGV[1]
local out = {}
local any_ok = false
for i = 5, #ARGV, 3 do
  local id = ARGV[i]
  local key = P .. "job:" .. id
  local s = redis.call("HMGET", key, "state", "token")
  if s[1] == "active" and s[2] == ARGV[i + 1] then
    redis.call("ZREM", KEYS[1], id)
    redis.call("HSET", key, "state", "completed", "finished", ARGV[2], "result", ARGV[i + 2])
    redis.call("HDEL", key, "token")
    redis.call("ZADD", KEYS[2], ARGV[2], id)
    table.insert(out, 1)
    any_ok = true
  else
    table.insert(out, 0)
  end
end
local removed = 0
if any_ok then removed = trim(KEYS[2], P, tonumber(ARGV[2]), ARGV[3], ARGV[4], -1) end
table.insert(out, removed)
return out
"""

# KEYS: active, wait, delayed. ARGV: prefix, id, token, now, due, reason. Returns 1 or 0 (lock lost).
RETRY_LATER = """
local key = ARGV[1] .. "job:" .. ARGV[2]
local s = redis.call("HMGET", key, "state", "token")
if s[1] ~= "active" or s[2] ~= ARGV[3] then return 0 end
redis.call("ZREM", KEYS[1], ARGV[2])
redis.call("HINCRBY", key, "made", 1)
redis.call("HSET", key, "reason", ARGV[6])
redis.call("HDEL", key, "token")
if tonumber(ARGV[5]) > tonumber(ARGV[4]) then
  redis.call("HSET", key, "state", "delayed", "due", ARGV[5])
  redis.call("ZADD", KEYS[3], ARGV[5], ARGV[2])
else
  redis.call("HSET", key, "state", "waiting")
  redis.call("LPUSH", KEYS[2], ARGV[2])
end
return 1
"""

# KEYS: active, failed. ARGV: prefix, id, token, now, reason, keep age ms, keep count. Returns {ok, removed}.
FAIL = _TRIM + """
local key = ARGV[1] .. "job:" .. ARGV[2]
local s = redis.call("HMGET", key, "state", "token")
if s[1] ~= "active" or s[2] ~= ARGV[3] then return {0, 0} end
redis.call("ZREM", KEYS[1], ARGV[2])
redis.call("HINCRBY", key, "made", 1)
redis.call("HSET", key, "state", "failed", "finished", ARGV[4], "reason", ARGV[5])
redis.call("HDEL", key, "token")
redis.call("ZADD", KEYS[2], ARGV[4], ARGV[2])
return {1, trim(KEYS[2], ARGV[1], tonumber(ARGV[4]), ARGV[6], ARGV[7], -1)}
"""

# KEYS: active, wait, failed. ARGV: prefix, now, max stalled count, reason, keep age ms, keep count.
# Returns {id, name, stalled count, failed (0/1)} per job, oldest lock first.
STALLED = _TRIM + """
local P = ARGV[1]
local ids = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", "(" .. ARGV[2])
local out = {}
local any_failed = false
for i = #ids, 1, -1 do
  local id = ids[i]
  local key = P .. "job:" .. id
  local count = redis.call("HINCRBY", key, "stalled", 1)
  local failed = 0
  redis.call("ZREM", KEYS[1], id)
  redis.call("HDEL", key, "token")
  if count > tonumber(ARGV[3]) then
    failed = 1
    any_failed = true
    redis.call("HSET", key, "state", "failed", "finished", ARGV[2], "reason", ARGV[4])
    redis.call("ZADD", KEYS[3], ARGV[2], id)
  else
    redis.call("HSET", key, "state", "waiting")
    redis.call("RPUSH", KEYS[2], id)
  end
  table.insert(out, 1, {id, redis.call("HGET", key, "name"), count, failed})
end
if any_failed then trim(KEYS[3], P, tonumber(ARGV[2]), ARGV[5], ARGV[6], -1) end
return out
"""

# KEYS: failed, wait. ARGV: prefix, id ("" = all). Returns {status, ...}: {1, {id, fields}...} retried (fields as
# they were), {-1} no such job, {-2, state} not failed.
RETRY_FAILED = """
local P = ARGV[1]
local ids
if ARGV[2] ~= "" then
  local state = redis.call("HGET", P .. "job:" .. ARGV[2], "state")
  if not state then return {-1} end
  if state ~= "failed" then return {-2, state} end
  ids = {ARGV[2]}
else
  ids = redis.call("ZRANGE", KEYS[1], 0, -1)
end
local out = {1}
for _, id in ipairs(ids) do
  local key = P .. "job:" .. id
  table.insert(out, {id, redis.call("HGETALL", key)})
  redis.call("ZREM", KEYS[1], id)
  redis.call("HSET", key, "state", "waiting", "made", 0, "stalled", 0)
  redis.call("HDEL", key, "reason", "finished")
  redis.call("LPUSH", KEYS[2], id)
end
return out
"""

# KEYS: zset (completed or failed). ARGV: prefix, now, keep age ms, keep count, limit (-1 none). Returns removed.
TRIM = _TRIM + """
return trim(KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], tonumber(ARGV[5]))
"""

# KEYS: meta. ARGV: "1" pause, "0" resume. Returns 1 when that changed the queue.
SET_PAUSED = """
local was = redis.call("HGET", KEYS[1], "paused") == "1"
if (ARGV[1] == "1") == was then return 0 end
redis.call("HSET", KEYS[1], "paused", ARGV[1])
return 1
"""

# KEYS: meta, wait, active, completed, failed, delayed. Returns {paused, waiting, active, completed, failed, delayed}.
STATS = """
return {redis.call("HGET", KEYS[1], "paused") == "1" and 1 or 0, redis.call("LLEN", KEYS[2]),
  redis.call("ZCARD", KEYS[3]), redis.call("ZCARD", KEYS[4]), redis.call("ZCARD", KEYS[5]),
  redis.call("ZCARD", KEYS[6])}
"""

# KEYS: the state's key. ARGV: prefix, kind ("list", "asc", "desc"), offset, limit. Returns {{id, fields}...}.
JOBS = """
local ids
local first = tonumber(ARGV[3])
local last = first + tonumber(ARGV[4]) - 1
if ARGV[2] == "list" then
  ids = redis.call("LRANGE", KEYS[1], -(last + 1), -(first + 1))
  local reversed = {}
  for i = #ids, 1, -1 do table.insert(reversed, ids[i]) end
  ids = reversed
elseif ARGV[2] == "asc" then
  ids = redis.call("ZRANGE", KEYS[1], first, last)
else
  ids = redis.call("ZREVRANGE", KEYS[1], first, last)
end
local out = {}
for _, id in ipairs(ids) do table.insert(out, {id, redis.call("HGETALL", ARGV[1] .. "job:" .. id)}) end
return out
"""
