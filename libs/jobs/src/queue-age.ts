/**
 * The enqueue time of the job that has waited longest for a worker in a BullMQ queue, read in one
 * Redis round trip at scrape time (`celfarm_queue_oldest_waiting_seconds`).
 *
 * BullMQ (6.x) keeps waiting jobs in two places: jobs without a priority in the `wait` list (LPUSH,
 * taken from the tail: the tail is the oldest), and jobs with a priority — every farm job — in
 * the `prioritized` sorted set, scored `priority · 2³² + n` where n is the queue's counter at
 * insertion. Within one priority the lowest score is the first in line; across priorities the
 * first in line of a low priority may be far older than that of a high one (that is starvation,
 * what the metric is for), so the script takes the first job of every priority in use (a jump
 * per priority, not a scan of the set) and keeps the oldest `timestamp` (the job hash's
 * enqueue time, in the producer's clock).
 *
 * Not waiting for a worker, so not counted: `delayed` (backing off before a retry, or added with a
 * delay: a timer, not the farm's capacity, holds them; their count is in `celfarm_queue_jobs`),
 * `waiting-children` (a shot's finalize job until its frames finish), `active`. A job that comes
 * back from `delayed` keeps its enqueue time, so a frame that is retried counts from when it was
 * first queued: how long the studio has been waiting for it.
 */
import type { Queue } from 'bullmq';

/**
 * Priorities looked at, at most: the farm uses 101 (libs/jobs `bullPriority`); a queue using
 * more gets the oldest of its first 128 in use, which bounds the script's work.
 */
export const OLDEST_WAITING_MAX_PRIORITIES = 128;

/** KEYS: wait, prioritized; ARGV: job key prefix (`{prefix}:{queue}:`), most priorities to look at. */
const OLDEST_WAITING_LUA = `
local band = 4294967296
local oldest = false
local function consider(id)
  if not id then return end
  local ts = tonumber(redis.call('HGET', ARGV[1] .. id, 'timestamp'))
  if ts and (not oldest or ts < oldest) then oldest = ts end
end
consider(redis.call('LINDEX', KEYS[1], -1))
local min = '-inf'
for _ = 1, tonumber(ARGV[2]) do
  local first = redis.call('ZRANGEBYSCORE', KEYS[2], min, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if #first == 0 then break end
  consider(first[1])
  min = string.format('%.0f', (math.floor(tonumber(first[2]) / band) + 1) * band)
end
if oldest then return string.format('%.0f', oldest) end
return false
`;

const COMMAND = 'celfarmOldestWaiting';
const defined = new WeakSet<object>();

/**
 * Enqueue time (ms since the epoch) of the job waiting longest for a worker in `queue`, or null
 * when none waits. One script call: O(priorities in use · log n), whatever the queue's length.
 */
export async function oldestWaitingTimestamp(queue: Queue, maxPriorities = OLDEST_WAITING_MAX_PRIORITIES): Promise<number | null> {
  const client = await queue.getBackend().client;
  if (!defined.has(client)) {
    // EVALSHA with a fallback to EVAL, through BullMQ's own client (ioredis or another adapter).
    client.defineCommand(COMMAND, { numberOfKeys: 2, lua: OLDEST_WAITING_LUA, readOnly: true });
    defined.add(client);
  }
  const ts: unknown = await client.runCommand(COMMAND, [queue.keys.wait!, queue.keys.prioritized!, queue.toKey(''), maxPriorities]);
  return ts === null || ts === undefined ? null : Number(ts);
}
