/**
 * Per-key rate limits: a token bucket per API key in Redis, taken by one Lua script so that
 * every API process shares the bucket and no two requests race on it. The bucket refills `rate`
 * tokens per second up to `burst`; a request takes one token or is refused with the wait until
 * the next token.
 */
import type { Cluster, Redis } from 'ioredis';

/**
 * KEYS[1] bucket hash {tokens, ts}; ARGV rate (tokens/s), burst, now (ms; negative = Redis TIME,
 * one clock for every API host). A clock behind `ts` adds nothing, so skew cannot mint tokens.
 */
const TAKE = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = tokens + (now - ts) * rate / 1000
  ts = now
end
tokens = math.min(burst, tokens)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, tostring(tokens), wait}
`;

export interface BucketLimits {
  /** Tokens added per second (the sustained request rate). */
  rate: number;
  /** Bucket size: how many requests may come at once after a quiet spell. */
  burst: number;
}

export interface TakeResult {
  allowed: boolean;
  /** Whole tokens left after this request. */
  remaining: number;
  /** When refused: milliseconds until a token is available (0 when allowed). */
  retryAfterMs: number;
}

export class RateLimiter {
  constructor(
    readonly redis: Redis | Cluster,
    readonly prefix = 'celfarm',
  ) {}

  /**
   * Takes one token from the bucket of `id`. `nowMs` overrides Redis's clock (tests); leave it
   * out in production so every API host reads the same clock.
   */
  async take(id: string, limits: BucketLimits, nowMs?: number): Promise<TakeResult> {
    if (!(limits.rate > 0) || !(limits.burst >= 1)) throw new Error(`invalid bucket: rate ${limits.rate}/s, burst ${limits.burst}`);
    const r = (await this.redis.eval(TAKE, 1, `${this.prefix}:ratelimit:${id}`, limits.rate, limits.burst, nowMs ?? -1)) as [number, string, number];
    return { allowed: r[0] === 1, remaining: Math.floor(Number(r[1])), retryAfterMs: Number(r[2]) };
  }
}
