/**
 * Where the worker's model pack comes from: a local folder (PACK_DIR), or an object-store prefix
 * (PACK_S3_PREFIX) downloaded into PACK_CACHE_DIR/<id>@<version>.
 *
 * Packs are many GB, so each object is streamed to `<file>.part` while its sha256 is computed,
 * checked against pack.json, then renamed into place; no file is ever held in memory. Several
 * workers share a host and its cache: the first takes `<id>@<version>.lock` and downloads, the
 * others wait for it and then reuse its copy.
 *
 * Completeness is a marker, not a folder rename: `<id>@<version>.complete` (beside the folder,
 * holding the sha256 of the pack.json it was made for) is written last, after every file of
 * `packFiles()` verified. Files are repaired in place, one rename each, so a worker whose
 * sessions are already open from this folder keeps reading the files it opened, and a download
 * cut short keeps the files it verified: the next attempt fetches only what is missing or wrong.
 * A cached copy is still re-hashed before reuse, which is why nothing is fsync'ed.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { Config } from '@celfarm/config';
import { packFileEntries, PipelineError, readPackManifest, sha256File, sha256Hex, type PackFile, type PackManifest } from '@celfarm/pipeline';
import { getToFile, parseS3Location, withBucket, type ObjectStore, type S3ObjectStore } from '@celfarm/storage';

export interface ResolvedPack {
  dir: string;
  manifest: PackManifest;
  /** dir: used in place; cache: a verified earlier download; download: fetched and verified now. */
  source: 'dir' | 'cache' | 'download';
}

/** Who holds a pack's download lock; written into the lock file. */
export interface LockOwner {
  pid: number;
  host: string;
  /** Tells this process from an earlier one that had the same pid (containers restart as pid 1). */
  token: string;
}

const THIS_PROCESS: LockOwner = { pid: process.pid, host: hostname(), token: randomBytes(8).toString('hex') };

/** Whether the process that wrote a lock still runs. Another host's process is taken as alive. */
export function lockOwnerAlive(owner: LockOwner): boolean {
  if (owner.host !== THIS_PROCESS.host) return true;
  if (owner.pid === THIS_PROCESS.pid) return owner.token === THIS_PROCESS.token;
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface FetchPackOptions {
  /**
   * How long to wait for another process's download without seeing it progress (files or
   * bytes added to the pack folder) before giving up. Default 10 minutes.
   */
  stallTimeoutMs?: number;
  /** First wait between looks at a held lock; doubles up to `pollMaxMs`. Default 200 ms. */
  pollMs?: number;
  /** Longest wait between looks at a held lock. Default 5 s. */
  pollMaxMs?: number;
  /** Attempts per file when the transfer itself fails (a reset connection). Default 3. */
  attempts?: number;
  /** Lock owner written by this call. Default: this process. */
  owner?: LockOwner;
  /** Whether a lock's owner still runs. Default {@link lockOwnerAlive}. */
  isAlive?: (owner: LockOwner) => boolean;
  /** How errors name the store, e.g. `s3://models`. Default: keys alone. */
  where?: string;
  /** Clock and sleep, injectable so the lock's timeouts are tested without waiting. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** A download lock held past the stall timeout by a live process. */
export class PackLockTimeoutError extends Error {
  override readonly name = 'PackLockTimeoutError';
}

/** PACK_DIR in place, else PACK_S3_PREFIX downloaded into PACK_CACHE_DIR (sha256-verified). */
export async function resolvePack(config: Config, objects: S3ObjectStore): Promise<ResolvedPack> {
  if (config.PACK_DIR) {
    const dir = resolve(config.PACK_DIR);
    return { dir, manifest: (await readPackManifest({ dir })).manifest, source: 'dir' };
  }
  if (!config.PACK_S3_PREFIX) throw new Error('no model pack: set PACK_DIR (a pack folder) or PACK_S3_PREFIX (an object-store prefix with pack.json)');
  const { bucket, prefix } = parseS3Location(config.PACK_S3_PREFIX, config.S3_BUCKET);
  return withBucket(config, objects, bucket, (store) => fetchPack(store, prefix, resolve(config.PACK_CACHE_DIR), { where: `s3://${bucket}` }));
}

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code;

/** The file's sha256, or null when it cannot be read (absent: to be downloaded). */
const sha256IfPresent = (path: string): Promise<string | null> => sha256File(path).catch(() => null);

/** Writes `path` whole or not at all (readers never see a half-written file). */
async function writeAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
}

interface PackPaths {
  dir: string;
  lock: string;
  marker: string;
}

/** True when the marker names this pack.json, the folder holds it, and every file hashes right. */
async function isComplete(paths: PackPaths, manifestBytes: Uint8Array, manifest: PackManifest): Promise<boolean> {
  const marker = await readFile(paths.marker, 'utf8').catch(() => null);
  if (marker?.trim() !== sha256Hex(manifestBytes)) return false;
  const local = await readFile(join(paths.dir, 'pack.json')).catch(() => null);
  if (!local || !Buffer.from(manifestBytes).equals(local)) return false;
  for (const f of packFileEntries(manifest)) {
    if ((await sha256IfPresent(join(paths.dir, f.file))) !== f.sha256) return false;
  }
  return true;
}

/** Downloads (or reuses) the pack under `prefix` of `objects` into `cacheDir`. */
export async function fetchPack(objects: ObjectStore, prefix: string, cacheDir: string, options: FetchPackOptions = {}): Promise<ResolvedPack> {
  const keyOf = (name: string) => (prefix ? `${prefix}/${name}` : name);
  const { manifest, bytes: manifestBytes } = await readPackManifest({ objects, prefix, where: options.where });
  const name = `${manifest.id}@${manifest.version}`;
  const paths: PackPaths = { dir: join(cacheDir, name), lock: join(cacheDir, `${name}.lock`), marker: join(cacheDir, `${name}.complete`) };
  if (await isComplete(paths, manifestBytes, manifest)) return { dir: paths.dir, manifest, source: 'cache' };

  await mkdir(cacheDir, { recursive: true });
  const lock = await acquireLock(paths, name, options);
  try {
    // The holder before us may have finished while we waited.
    if (await isComplete(paths, manifestBytes, manifest)) return { dir: paths.dir, manifest, source: 'cache' };
    const downloaded = await download(objects, keyOf, paths, manifest, options.attempts ?? 3);
    await writeAtomic(join(paths.dir, 'pack.json'), manifestBytes);
    await lock.assertHeld();
    await writeAtomic(paths.marker, `${sha256Hex(manifestBytes)}\n`);
    return { dir: paths.dir, manifest, source: downloaded > 0 ? 'download' : 'cache' };
  } finally {
    await lock.release();
  }
}

/**
 * Brings every file of the pack into `paths.dir`, keeping the ones that already verify; returns
 * how many were fetched. Must hold the lock: it is the folder's only writer.
 */
async function download(
  objects: ObjectStore,
  keyOf: (name: string) => string,
  paths: PackPaths,
  manifest: PackManifest,
  attempts: number,
): Promise<number> {
  await rm(paths.marker, { force: true });
  await mkdir(paths.dir, { recursive: true });
  const files = packFileEntries(manifest);
  const keep = new Set(['pack.json', ...files.map((f) => f.file)]);
  // `.part` files of a killed download, and files an earlier pack.json of this id@version listed.
  for (const entry of await readdir(paths.dir)) {
    if (!keep.has(entry)) await rm(join(paths.dir, entry), { recursive: true, force: true });
  }
  let fetched = 0;
  for (const f of files) {
    const path = join(paths.dir, f.file);
    if ((await sha256IfPresent(path)) === f.sha256) continue;
    await downloadFile(objects, keyOf(f.file), path, f, attempts);
    fetched += 1;
  }
  return fetched;
}

async function downloadFile(objects: ObjectStore, key: string, path: string, f: PackFile, attempts: number): Promise<void> {
  const part = `${path}.part`;
  const what = f.kind === 'graph' ? `graph ${f.graph} file ${key}` : `graph ${f.graph} data file ${key}`;
  for (let attempt = 1; ; attempt += 1) {
    try {
      const got = await getToFile(objects, key, part);
      if (!got) throw new PipelineError('PACK_FILE_MISSING', `${what} is missing`, f.field);
      if (got.sha256 !== f.sha256) {
        throw new PipelineError('PACK_HASH_MISMATCH', `${what} has sha256 ${got.sha256}, pack.json says ${f.sha256}`, f.field);
      }
      await rename(part, path);
      return;
    } catch (e) {
      await rm(part, { force: true });
      // A missing or wrong object will not change by asking again; a cut transfer may.
      if (e instanceof PipelineError || attempt >= attempts) throw e;
    }
  }
}

interface HeldLock {
  /** Throws when another process has taken the lock over (it judged this one dead). */
  assertHeld(): Promise<void>;
  release(): Promise<void>;
}

const parseOwner = (text: string): LockOwner | null => {
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    return Number.isInteger(o.pid) && o.pid! > 0 && typeof o.host === 'string' && typeof o.token === 'string' ? (o as LockOwner) : null;
  } catch {
    return null;
  }
};

/** Sum of the sizes in the pack folder: grows while the lock holder downloads. */
async function progressOf(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir).catch(() => [])) {
    total += (await stat(join(dir, entry)).catch(() => null))?.size ?? 0;
  }
  return total;
}

/**
 * Takes `<id>@<version>.lock`, waiting while a live process holds it; a lock whose owner is dead
 * is taken over. The lock is written whole into a temporary file and linked into place, so it
 * never exists without its owner and two processes cannot both create it.
 */
async function acquireLock(paths: PackPaths, name: string, options: FetchPackOptions): Promise<HeldLock> {
  const owner = options.owner ?? THIS_PROCESS;
  const isAlive = options.isAlive ?? lockOwnerAlive;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const stallTimeoutMs = options.stallTimeoutMs ?? 10 * 60_000;
  const pollMaxMs = options.pollMaxMs ?? 5_000;
  // Unique per acquisition, so a release never removes a lock another call of this process took.
  const content = JSON.stringify({ ...owner, nonce: randomBytes(8).toString('hex') });
  const mine = `${paths.lock}.${owner.pid}-${randomBytes(4).toString('hex')}`;
  await writeFile(mine, content);

  let delay = options.pollMs ?? 200;
  let progress = -1;
  let lastProgressAt = now();
  try {
    for (;;) {
      try {
        await link(mine, paths.lock);
        break;
      } catch (e) {
        if (errno(e) !== 'EEXIST') throw e;
      }
      let held: string;
      try {
        held = await readFile(paths.lock, 'utf8');
      } catch (e) {
        if (errno(e) === 'ENOENT') continue; // released between our link and our read
        throw e;
      }
      const holder = parseOwner(held);
      if (!holder || !isAlive(holder)) {
        await takeOver(paths.lock, held);
        continue;
      }
      const p = await progressOf(paths.dir);
      if (p !== progress) {
        progress = p;
        lastProgressAt = now();
      } else if (now() - lastProgressAt > stallTimeoutMs) {
        throw new PackLockTimeoutError(
          `pack ${name}: gave up after ${Math.round(stallTimeoutMs / 1000)} s without progress waiting for ${paths.lock}, ` +
            `held by pid ${holder.pid} on ${holder.host}; if that process is not downloading the pack, delete the lock file`,
        );
      }
      await sleep(delay);
      delay = Math.min(delay * 2, pollMaxMs);
    }
  } finally {
    await rm(mine, { force: true });
  }

  const stillMine = async () => (await readFile(paths.lock, 'utf8').catch(() => null)) === content;
  return {
    async assertHeld() {
      if (!(await stillMine())) throw new Error(`pack ${name}: lost ${paths.lock} to another process while downloading`);
    },
    async release() {
      if (await stillMine()) await rm(paths.lock, { force: true });
    },
  };
}

/**
 * Removes a dead owner's lock. Rename is atomic, so of two waiters that saw the same dead owner
 * only one moves that file; the other may move the lock the first just made, and puts it back.
 */
async function takeOver(lock: string, dead: string): Promise<void> {
  const aside = `${lock}.stale-${randomBytes(4).toString('hex')}`;
  try {
    await rename(lock, aside);
  } catch (e) {
    if (errno(e) === 'ENOENT') return;
    throw e;
  }
  try {
    if ((await readFile(aside, 'utf8')) !== dead) await link(aside, lock).catch(() => undefined);
  } finally {
    await unlink(aside).catch(() => undefined);
  }
}
