-- The job steps of a cluster, one Lua script each (so each step is atomic), all with Redis's own
-- clock. Keys: KEYS[1] the job's hash, KEYS[2] the job stream (one consumer group). A job hash
-- holds: state (QUEUED, PROCESSING, COMPLETED, FAILED), submitted/started/finished (ms),
-- attempt (runs started), owner (the replica running it), spec, input (blob key) or url (to
-- fetch), output (blob key), error, fault, plan (the load-testing mode's latency and fault for
-- the job, JSON), cost, remaining.
-- This file is split at the "--@ name" lines; each part is prefixed with the helpers below.

local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The stream entry is done with: out of the pending list and the stream.
local function done(stream, group, entry)
  redis.call('XACK', stream, group, entry)
  redis.call('XDEL', stream, entry)
end

-- Whether `consumer` runs attempt `attempt` of the job (the fence of every later step).
local function owns(job, consumer, attempt)
  local h = redis.call('HMGET', job, 'state', 'owner', 'attempt')
  return h[1] == 'PROCESSING' and h[2] == consumer and h[3] == attempt
end

--@ submit
-- ARGV: ttl_ms, depth, group, id, spec, input (blob key, or ''), url (or ''), plan.
-- Records a QUEUED job and puts it into the stream in one step, so a replica that dies after
-- answering a submit cannot leave a job behind that nobody runs. Refused (0) when the jobs
-- waiting cluster-wide (in the stream, not delivered) reach the depth.
local waiting = 0
if redis.call('EXISTS', KEYS[2]) == 1 then
  local pending = redis.call('XPENDING', KEYS[2], ARGV[3])[1]
  waiting = redis.call('XLEN', KEYS[2]) - pending
end
if waiting >= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'QUEUED', 'submitted', now(), 'attempt', 0,
  'spec', ARGV[5], 'input', ARGV[6], 'url', ARGV[7], 'plan', ARGV[8])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[2], '*', 'id', ARGV[4])
return 1

--@ claim
-- KEYS: the stream only. ARGV: group, consumer, lease_ms, job key prefix, max_attempts.
-- Takes one job: first one whose lease ran out (its replica died or released it), else a new
-- one; starts it as attempt n. Returns nil (nothing to do), {'skip'} (an expired or finished
-- job, dropped), {'failed', id} (out of attempts) or {'run', id, entry, attempt, spec, input,
-- url, plan}.
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local entry
local reclaimed = redis.call('XAUTOCLAIM', stream, group, consumer, ARGV[3], '0-0', 'COUNT', 1)
if reclaimed[2][1] then
  entry = reclaimed[2][1]
else
  local new = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', 1, 'STREAMS', stream, '>')
  if new then
    entry = new[1][2][1]
  end
end
if not entry then
  return nil
end
local entry_id, id = entry[1], entry[2][2]
local job = ARGV[4] .. id
local state = redis.call('HGET', job, 'state')
if state ~= 'QUEUED' and state ~= 'PROCESSING' then
  done(stream, group, entry_id)
  return {'skip'}
end
local attempt = redis.call('HINCRBY', job, 'attempt', 1)
if attempt > tonumber(ARGV[5]) then
  redis.call('HSET', job, 'state', 'FAILED', 'finished', now(), 'owner', '',
    'error', 'the job was lost ' .. (attempt - 1) .. ' times (the replica running it stopped); '
      .. 'given up after ' .. ARGV[5] .. ' attempts')
  done(stream, group, entry_id)
  return {'failed', id}
end
redis.call('HSET', job, 'state', 'PROCESSING', 'owner', consumer, 'started', now())
local h = redis.call('HMGET', job, 'spec', 'input', 'url', 'plan')
return {'run', id, entry_id, tostring(attempt), h[1], h[2], h[3], h[4]}

--@ heartbeat
-- ARGV: group, entry, consumer, attempt. Renews the lease (the entry's idle time) while the
-- job is still this run's. Returns 1, or 0 when the run lost the job.
if not owns(KEYS[1], ARGV[3], ARGV[4]) then
  return 0
end
redis.call('XCLAIM', KEYS[2], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID')
return 1

--@ complete
-- ARGV: group, entry, consumer, attempt, output key.
-- Records the output once; a stale run (not the job's owner any more) gets 0 and deletes its
-- blob.
if not owns(KEYS[1], ARGV[3], ARGV[4]) then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'COMPLETED', 'output', ARGV[5], 'finished', now())
done(KEYS[2], ARGV[1], ARGV[2])
return 1

--@ fail
-- ARGV: group, entry, consumer, attempt, error, fault rule ('' for none).
if not owns(KEYS[1], ARGV[3], ARGV[4]) then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'FAILED', 'error', ARGV[5], 'fault', ARGV[6], 'finished', now())
done(KEYS[2], ARGV[1], ARGV[2])
return 1

--@ release
-- ARGV: group, entry, consumer, attempt. At shutdown: the job goes back for another replica at
-- once (its entry made idle past any lease), and the run does not count as lost.
if not owns(KEYS[1], ARGV[3], ARGV[4]) then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'QUEUED', 'owner', '')
redis.call('HINCRBY', KEYS[1], 'attempt', -1)
redis.call('XCLAIM', KEYS[2], ARGV[1], ARGV[3], 0, ARGV[2], 'IDLE', 86400000, 'JUSTID')
return 1

--@ charged
-- KEYS: the job's hash only. ARGV: cost, remaining. The replica that admitted a job and holds
-- its credits records what it charged, once the job is COMPLETED (by whichever replica).
if redis.call('HGET', KEYS[1], 'state') ~= 'COMPLETED' then
  return 0
end
redis.call('HSET', KEYS[1], 'cost', ARGV[1], 'remaining', ARGV[2])
return 1
