/**
 * Shot, frame and worker records in Redis. Updates are optimistic read-modify-write with an
 * atomic compare-and-set in a Lua script (the write happens only if the stored value is still
 * the one that was read), so concurrent workers and the API never lose each other's writes even
 * over one shared connection (WATCH is per connection and would not be safe there). Shot and
 * frame transitions are checked against the state machines in records.ts, on the record as it
 * is at the write. Creating a shot announces it (`shot.created`) in the same MULTI.
 */
import type { RedisClient } from './redis.ts';
import { EventBus } from './events.ts';
import { SEARCH_SCAN, searchText, shotIdentity } from './identity.ts';
import { digestOf, framesIn, parseTally, statesOf, tallyDelta, tallyOf, type ShotDigest } from './tally.ts';
import {
  FRAME_LETTERS,
  canFrameBecome,
  canShotTransition,
  frameRecordSchema,
  shotRecordSchema,
  workerInfoSchema,
  type FrameRecord,
  type FrameState,
  type ShotRecord,
  type ShotState,
  type WorkerInfo,
} from './records.ts';

export class StateConflictError extends Error {
  override readonly name: string = 'StateConflictError';
}

/** A frame write the frame state machine refuses (records.ts); nothing was written. */
export class FrameTransitionError extends StateConflictError {
  override readonly name = 'FrameTransitionError';
  constructor(
    readonly shotId: string,
    readonly frame: number,
    /** The state the frame is in (it stays there). */
    readonly from: FrameState,
    readonly to: FrameState,
  ) {
    super(`shot ${shotId} frame ${frame} is ${from}; it cannot become ${to}`);
  }
}

export interface FrameProgress {
  stage: string;
  step: number;
  steps: number;
}

export interface ListOptions {
  project?: string;
  state?: ShotState;
  limit?: number;
  /** Return shots created strictly before this cursor (from a previous page's `next`). */
  before?: string;
  /**
   * Only shots whose id, name or studio ids contain this text (case-insensitive). Such a list
   * looks at no more than `scan` shots per call (newest first); when it stops there with fewer
   * than `limit` matches, `next` continues the search where it stopped.
   */
  q?: string;
  /** Shots a search looks at per call (default {@link SEARCH_SCAN}). */
  scan?: number;
}

const IDEMPOTENCY_TTL_S = 24 * 3600;

/** SET key new IF GET key == old (KEYS[1]; ARGV old, new). */
const CAS_SET = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end return 0`;
/**
 * HSET key field new IF HGET key field == old, and keep in step: the active-frame index (member
 * added when the new state is active, removed otherwise), the shot's tally (each field moved by its
 * delta) and its state letters (the frame's letter set), the last two only where the shot has them
 * (shots from before them are read whole). KEYS[1] frames hash, KEYS[2] index, KEYS[3] tally,
 * KEYS[4] states; ARGV field (the frame number), old, new, member, '1' when active, the new state's
 * letter, then tally field/delta pairs.
 */
const CAS_HSET_FRAME = `if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if ARGV[5] == '1' then redis.call('SADD', KEYS[2], ARGV[4]) else redis.call('SREM', KEYS[2], ARGV[4]) end
if #ARGV > 6 and redis.call('EXISTS', KEYS[3]) == 1 then
  for i = 7, #ARGV, 2 do redis.call('HINCRBY', KEYS[3], ARGV[i], ARGV[i + 1]) end
end
if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('SETRANGE', KEYS[4], tonumber(ARGV[1]) - 1, ARGV[6]) end
return 1`;
const MAX_CAS_TRIES = 100;

const activeMember = (id: string, frame: number) => `${id}/${frame}`;
const ACTIVE: ReadonlySet<FrameState> = new Set(['active']);

/** An active frame's record with its sampler progress (`stage|step|steps`, written per step). */
function withProgress(f: FrameRecord, progress: string | undefined): FrameRecord {
  if (!progress || f.state !== 'active') return f;
  const [stage, step, steps] = progress.split('|');
  return { ...f, stage, step: Number(step), steps: Number(steps) };
}

export class ShotStore {
  /** Announces new shots; the same keys as every other EventBus of this prefix. */
  private readonly events: EventBus;

  constructor(
    readonly redis: RedisClient,
    readonly prefix = 'celfarm',
    private readonly clock: () => Date = () => new Date(),
  ) {
    this.events = new EventBus(redis, prefix, clock);
  }

  private async cas(key: string, old: string, next: string): Promise<boolean> {
    return (await this.redis.eval(CAS_SET, 1, key, old, next)) === 1;
  }

  private async frameCas(id: string, frame: number, old: string, cur: FrameRecord, next: FrameRecord): Promise<boolean> {
    const member = activeMember(id, frame);
    const active = next.state === 'active' ? '1' : '0';
    const delta = tallyDelta(cur, next).flatMap(([field, n]) => [field, String(n)]);
    const keys = [this.k.frames(id), this.k.active(), this.k.tally(id), this.k.states(id)];
    return (await this.redis.eval(CAS_HSET_FRAME, keys.length, ...keys, String(frame), old, JSON.stringify(next), member, active, FRAME_LETTERS[next.state], ...delta)) === 1;
  }

  private k = {
    shot: (id: string) => `${this.prefix}:shot:${id}`,
    frames: (id: string) => `${this.prefix}:shot:${id}:frames`,
    progress: (id: string) => `${this.prefix}:shot:${id}:progress`,
    /** Hash: the shot's {@link ShotTally}, moved with every frame write. */
    tally: (id: string) => `${this.prefix}:shot:${id}:tally`,
    /** String: one {@link FRAME_LETTERS} letter per frame, frame k at offset k−1. */
    states: (id: string) => `${this.prefix}:shot:${id}:states`,
    all: () => `${this.prefix}:shots`,
    /** Hash: shot id → its search text (identity.ts `searchText`), read by `list` with `q`. */
    search: () => `${this.prefix}:shot-search`,
    project: (p: string) => `${this.prefix}:project:${p}:shots`,
    idem: (p: string, key: string) => `${this.prefix}:idem:${p}:${key}`,
    workers: () => `${this.prefix}:workers`,
    /**
     * Set of `<shot>/<frame>` whose record is `active`: where the reaper looks for lost frames.
     * (Not `{prefix}:frames:active`: that is BullMQ's active list of the frames queue.)
     */
    active: () => `${this.prefix}:active-frames`,
  };

  /**
   * Stores a new shot and its frame records and publishes `shot.created`, all in one MULTI: the
   * shot exists exactly when it has been announced, and before anything can start it. With an
   * idempotency key, a second create with the same (project, key) returns the first shot's id
   * and writes (and announces) nothing.
   */
  async create(shot: ShotRecord, frames: FrameRecord[]): Promise<{ id: string; created: boolean }> {
    if (shot.idempotencyKey) {
      const ok = await this.redis.set(this.k.idem(shot.project, shot.idempotencyKey), shot.id, 'EX', IDEMPOTENCY_TTL_S, 'NX');
      if (ok !== 'OK') {
        const existing = await this.redis.get(this.k.idem(shot.project, shot.idempotencyKey));
        if (existing) return { id: existing, created: false };
      }
    }
    const score = Date.parse(shot.createdAt);
    const m = this.redis.multi();
    m.set(this.k.shot(shot.id), JSON.stringify(shotRecordSchema.parse(shot)));
    if (frames.length) {
      m.hset(this.k.frames(shot.id), Object.fromEntries(frames.map((f) => [String(f.frame), JSON.stringify(f)])));
    }
    m.hset(this.k.tally(shot.id), tallyOf(frames));
    m.set(this.k.states(shot.id), statesOf(frames, shot.frameCount));
    m.zadd(this.k.all(), score, shot.id);
    m.zadd(this.k.project(shot.project), score, shot.id);
    m.hset(this.k.search(), shot.id, searchText(shot));
    this.events.stage(
      m,
      'shot.created',
      { project: shot.project, shotId: shot.id, round: shot.round },
      {
        ...shotIdentity(shot),
        state: shot.state,
        frameCount: shot.frameCount,
        priority: shot.priority,
        awaitingUploads: shot.awaitingUploads,
      },
    );
    await m.exec();
    return { id: shot.id, created: true };
  }

  /** The id a (project, idempotency key) pair already maps to, if any. */
  idempotent(project: string, key: string): Promise<string | null> {
    return this.redis.get(this.k.idem(project, key));
  }

  async get(id: string): Promise<ShotRecord | null> {
    const raw = await this.redis.get(this.k.shot(id));
    return raw ? shotRecordSchema.parse(JSON.parse(raw)) : null;
  }

  /**
   * Applies `patch` to a shot atomically. With `to`, the state changes only if the state machine
   * allows it from the current state (and from one of `from`, when given); with `round`, only
   * while the shot is in that round; otherwise throws StateConflictError. Returns the updated
   * record, or null when the shot does not exist.
   */
  async update(
    id: string,
    patch: Partial<ShotRecord>,
    opts: { from?: readonly ShotState[]; round?: number } = {},
  ): Promise<ShotRecord | null> {
    const key = this.k.shot(id);
    for (let attempt = 0; attempt < MAX_CAS_TRIES; attempt++) {
      const raw = await this.redis.get(key);
      if (!raw) return null;
      const cur = shotRecordSchema.parse(JSON.parse(raw));
      if (patch.state && (!canShotTransition(cur.state, patch.state) || (opts.from && !opts.from.includes(cur.state)))) {
        throw new StateConflictError(`shot ${id} is ${cur.state}; cannot become ${patch.state}`);
      }
      // Only while the shot is still in that round (a retry or a re-render may have started another).
      if (opts.round !== undefined && cur.round !== opts.round) {
        throw new StateConflictError(`shot ${id} is in round ${cur.round}, not ${opts.round}`);
      }
      const next = shotRecordSchema.parse({ ...cur, ...patch, updatedAt: this.clock().toISOString() });
      if (await this.cas(key, raw, JSON.stringify(next))) return next;
    }
    throw new StateConflictError(`shot ${id}: too many concurrent updates`);
  }

  async frames(id: string): Promise<FrameRecord[]> {
    const [raw, progress] = await Promise.all([this.redis.hgetall(this.k.frames(id)), this.redis.hgetall(this.k.progress(id))]);
    return Object.values(raw)
      .map((v) => {
        const f = frameRecordSchema.parse(JSON.parse(v));
        return withProgress(f, progress[String(f.frame)]);
      })
      .sort((a, b) => a.frame - b.frame);
  }

  /**
   * The records of frames `numbers` (in that order; frames without a record are left out), active
   * ones with their sampler progress. Reads those records only.
   */
  async someFrames(id: string, numbers: readonly number[]): Promise<FrameRecord[]> {
    if (numbers.length === 0) return [];
    const [records, progress] = await Promise.all([this.records(id, numbers), this.redis.hmget(this.k.progress(id), ...numbers.map(String))]);
    return records.flatMap((f, i) => (f ? [withProgress(f, progress[i] ?? undefined)] : []));
  }

  /** The stored records of frames `numbers`, in that order (null where a frame has none); one HMGET. */
  private async records(id: string, numbers: readonly number[]): Promise<(FrameRecord | null)[]> {
    const raws = await this.redis.hmget(this.k.frames(id), ...numbers.map(String));
    return raws.map((raw) => (raw ? frameRecordSchema.parse(JSON.parse(raw)) : null));
  }

  /**
   * Drops the shot's tally and state letters: its views read its frame records whole from then on
   * (exact, as for a shot from before them), and no write recreates them. For shots whose frames
   * were written by a version of the farm from before the tally (a rolling upgrade), whose tally
   * stopped moving with those writes. True when there was one.
   */
  async dropTally(id: string): Promise<boolean> {
    return (await this.redis.del(this.k.tally(id), this.k.states(id))) > 0;
  }

  /** The shot's frame states, one {@link FRAME_LETTERS} letter per frame (read whole for a shot from before them). */
  async frameStates(id: string, frameCount: number): Promise<string> {
    return (await this.redis.get(this.k.states(id))) ?? statesOf(await this.frames(id), frameCount);
  }

  /**
   * What the shot's views need of its frames ({@link ShotDigest}): the tally and state letters
   * kept with every frame write, and the active records — not every record. A shot from before
   * the tally is read whole.
   */
  async digest(id: string, frameCount: number): Promise<ShotDigest> {
    const [raw, states] = await Promise.all([this.redis.hgetall(this.k.tally(id)), this.redis.get(this.k.states(id))]);
    const tally = parseTally(raw);
    if (!tally || states === null) return digestOf(await this.frames(id), frameCount);
    return { tally, states, active: await this.someFrames(id, framesIn(states, ACTIVE)) };
  }

  /**
   * The nearest frame record from `start` on, towards frame 1 (`direction` −1) or towards `last`
   * (+1), that `accept` takes; null when none does. Reads in chunks of 64, so a lookup that finds
   * its frame near `start` reads a few records, not the whole shot.
   */
  async nearestFrame(id: string, start: number, direction: 1 | -1, last: number, accept: (f: FrameRecord) => boolean): Promise<FrameRecord | null> {
    const CHUNK = 64;
    for (let from = start; direction < 0 ? from >= 1 : from <= last; from += direction * CHUNK) {
      const numbers: number[] = [];
      for (let n = from; numbers.length < CHUNK && (direction < 0 ? n >= 1 : n <= last); n += direction) numbers.push(n);
      for (const f of await this.records(id, numbers)) if (f && accept(f)) return f;
    }
    return null;
  }

  async frame(id: string, frame: number): Promise<FrameRecord | null> {
    const raw = await this.redis.hget(this.k.frames(id), String(frame));
    return raw ? frameRecordSchema.parse(JSON.parse(raw)) : null;
  }

  /**
   * Merges `patch` into one frame record atomically. A state change the frame state machine does
   * not allow from the record's current state throws {@link FrameTransitionError}; when `onlyIf`
   * is given and the frame's state is not in it (or the predicate refuses the current record),
   * nothing is written and null is returned (as for a frame that does not exist).
   */
  async setFrame(
    id: string,
    frame: number,
    patch: Partial<FrameRecord> | ((cur: FrameRecord) => Partial<FrameRecord>),
    onlyIf?: readonly FrameState[] | ((cur: FrameRecord) => boolean),
  ): Promise<FrameRecord | null> {
    const key = this.k.frames(id);
    for (let attempt = 0; attempt < MAX_CAS_TRIES; attempt++) {
      const raw = await this.redis.hget(key, String(frame));
      if (!raw) return null;
      const cur = frameRecordSchema.parse(JSON.parse(raw));
      if (onlyIf && !(typeof onlyIf === 'function' ? onlyIf(cur) : onlyIf.includes(cur.state))) return null;
      const p = typeof patch === 'function' ? patch(cur) : patch;
      const next = frameRecordSchema.parse({ ...cur, ...p, updatedAt: this.clock().toISOString() });
      if (!canFrameBecome(cur, next)) throw new FrameTransitionError(id, frame, cur.state, next.state);
      if (await this.frameCas(id, frame, raw, cur, next)) return next;
    }
    throw new StateConflictError(`shot ${id} frame ${frame}: too many concurrent updates`);
  }

  /**
   * Frames whose record says `active`, farm-wide (kept in step by {@link setFrame}). Entries of
   * deleted shots may linger until {@link forgetActive} drops them.
   */
  async activeFrames(): Promise<{ shotId: string; frame: number }[]> {
    const members = await this.redis.smembers(this.k.active());
    return members.flatMap((m) => {
      const [shotId, frame] = m.split('/');
      return shotId && frame ? [{ shotId, frame: Number(frame) }] : [];
    });
  }

  /** Drops an entry of {@link activeFrames} whose record no longer exists. */
  async forgetActive(id: string, frame: number): Promise<void> {
    await this.redis.srem(this.k.active(), activeMember(id, frame));
  }

  /** Sampler progress of an active frame (overwritten per step; cheap). */
  async setProgress(id: string, frame: number, p: FrameProgress): Promise<void> {
    await this.redis.hset(this.k.progress(id), String(frame), `${p.stage}|${p.step}|${p.steps}`);
  }

  /**
   * Shots newest first. The cursor is `<createdAt ms>.<id>` of the last shot of the previous
   * page (or, for a search, of the last shot it looked at), so shots created in the same
   * millisecond are never skipped or repeated.
   */
  async list(opts: ListOptions = {}): Promise<{ shots: ShotRecord[]; next: string | null }> {
    const limit = Math.min(Math.max(opts.limit ?? 50, 1), 500);
    const key = opts.project ? this.k.project(opts.project) : this.k.all();
    let maxScore = '+inf';
    let afterId: string | null = null;
    let afterScore = Infinity;
    if (opts.before) {
      const dot = opts.before.indexOf('.');
      afterScore = Number(dot < 0 ? opts.before : opts.before.slice(0, dot));
      afterId = dot < 0 ? null : opts.before.slice(dot + 1);
      maxScore = afterId === null ? `(${afterScore}` : String(afterScore);
    }
    const shots: ShotRecord[] = [];
    const q = opts.q?.trim().toLowerCase() || undefined;
    let offset = 0;
    let scanned = 0;
    let lastLooked: string | null = null;
    // ZREVRANGEBYSCORE orders equal scores by member descending: skip up to and including the cursor.
    for (;;) {
      const page = await this.redis.zrevrangebyscore(key, maxScore, '-inf', 'WITHSCORES', 'LIMIT', offset, 200);
      if (page.length === 0) break;
      offset += page.length / 2;
      const ids = page.filter((_, i) => i % 2 === 0);
      // A search reads the page's search texts first and only the records that match.
      const texts = q ? await this.redis.hmget(this.k.search(), ...ids) : [];
      const wanted = ids.filter((id, i) => !q || (texts[i] ?? id.toLowerCase()).includes(q));
      // One round trip for the records.
      const records = wanted.length ? await this.redis.mget(wanted.map((id) => this.k.shot(id))) : [];
      const raws = new Map(wanted.map((id, i) => [id, records[i]]));
      for (let i = 0; i < page.length; i += 2) {
        const id = page[i]!;
        const score = Number(page[i + 1]);
        if (afterId !== null && score === afterScore && id >= afterId) continue;
        if (q && ++scanned > (opts.scan ?? SEARCH_SCAN)) return { shots, next: lastLooked };
        lastLooked = `${score}.${id}`;
        const raw = raws.get(id);
        const shot = raw ? shotRecordSchema.parse(JSON.parse(raw)) : null;
        if (!shot || (opts.state && shot.state !== opts.state)) continue;
        shots.push(shot);
        if (shots.length === limit) return { shots, next: `${score}.${id}` };
      }
    }
    return { shots, next: null };
  }

  async delete(id: string): Promise<void> {
    const shot = await this.get(id);
    const m = this.redis.multi().del(this.k.shot(id), this.k.frames(id), this.k.progress(id), this.k.tally(id), this.k.states(id)).zrem(this.k.all(), id).hdel(this.k.search(), id);
    if (shot) {
      m.zrem(this.k.project(shot.project), id);
      if (shot.frameCount > 0) m.srem(this.k.active(), ...Array.from({ length: shot.frameCount }, (_, i) => activeMember(id, i + 1)));
      if (shot.idempotencyKey) m.del(this.k.idem(shot.project, shot.idempotencyKey));
    }
    await m.exec();
  }

  /** Registers or refreshes a worker; entries older than `expireMs` are dropped on read. */
  async heartbeat(info: WorkerInfo): Promise<void> {
    await this.redis.hset(this.k.workers(), info.id, JSON.stringify(workerInfoSchema.parse(info)));
  }

  async removeWorker(id: string): Promise<void> {
    await this.redis.hdel(this.k.workers(), id);
  }

  /** Live workers; expired entries (no heartbeat for `expireMs`) are deleted. */
  async workers(expireMs: number): Promise<WorkerInfo[]> {
    const all = await this.redis.hgetall(this.k.workers());
    const now = this.clock().getTime();
    const live: WorkerInfo[] = [];
    for (const [id, raw] of Object.entries(all)) {
      const w = workerInfoSchema.parse(JSON.parse(raw));
      if (now - Date.parse(w.lastSeen) > expireMs) await this.redis.hdel(this.k.workers(), id);
      else live.push(w);
    }
    return live.sort((a, b) => a.id.localeCompare(b.id));
  }
}
