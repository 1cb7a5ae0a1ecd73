/**
 * Admin command: bootstraps and manages projects and API keys (and drops shot tallies after a
 * rolling upgrade) straight in Redis (no API key
 * needed, so it works before the first key exists). Reads REDIS_URL, REDIS_CLUSTER_NODES and
 * REDIS_PREFIX; when neither REDIS_URL nor REDIS_CLUSTER_NODES is set and `npm run demo` is
 * running, it uses the demo's Redis (from the file the demo writes, .cache/demo/farm.env;
 * CELFARM_DEMO_ENV names another). An unreachable Redis is one line on stderr that names the URL
 * (or the Cluster's seeds) and what to do.
 *
 *   node --import tsx apps/api/src/admin.ts keys create --project demo --name td --scopes submit,read,admin [--rate-limit 5]
 *   node --import tsx apps/api/src/admin.ts keys list --project demo
 *   node --import tsx apps/api/src/admin.ts keys revoke --project demo --id key_…
 *   node --import tsx apps/api/src/admin.ts projects list
 *   node --import tsx apps/api/src/admin.ts webhooks allow --project demo --host 127.0.0.1:8765
 *   node --import tsx apps/api/src/admin.ts webhooks disallow --project demo --host 127.0.0.1:8765
 *   node --import tsx apps/api/src/admin.ts shots drop-tallies --since 2026-12-01T09:00:00Z
 *
 * `shots drop-tallies` is for a rolling upgrade from a farm without stored shot tallies: once every
 * API and worker runs this version, it drops the tally and state letters of the shots created since
 * the upgrade began (`--since`, an ISO time; `--all` for every shot), whose frames older processes
 * may have written without moving them; their views then read their frame records whole.
 *
 * `keys create` prints the token alone on one stdout line (shown once; everything else goes to
 * stderr), so `TOKEN=$(… keys create …)` works. Exit status: 0 done, 1 failed, 2 bad usage.
 */
import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from '@celfarm/config';
import { connectRedis, ShotStore, type ShotRecord } from '@celfarm/jobs';
import { KeyStore, SCOPES, projectIdSchema, type Scope } from '@celfarm/tenancy';

const USAGE = `usage: admin.ts <command>
  keys create --project <p> --name <name> --scopes submit,read,admin [--rate-limit <req/s>]
  keys list --project <p>
  keys revoke --project <p> --id <key id>
  projects list
  webhooks allow --project <p> --host <host[:port]>
  webhooks disallow --project <p> --host <host[:port]>
  shots drop-tallies --since <ISO time> | --all`;

class UsageError extends Error {}

/** Where `npm run demo` writes its connection details (tools/services, DEMO_FARM_ENV). */
const DEMO_FARM_ENV = resolve(import.meta.dirname, '../../..', '.cache/demo/farm.env');

function running(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface Target {
  env: Record<string, string | undefined>;
  /** The demo connection file the Redis settings came from. */
  demo?: string;
  /** A demo connection file left behind by a demo that is gone, and so ignored. */
  stale?: string;
}

/** `env`, or when it names no Redis, `env` with the running demo's REDIS_URL and REDIS_PREFIX. */
function target(env: Record<string, string | undefined>, file: string): Target {
  if (env.REDIS_URL || env.REDIS_CLUSTER_NODES) return { env };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return { env };
  }
  const vars = new Map([...text.matchAll(/^export ([A-Z0-9_]+)='((?:[^']|'\\'')*)'$/gm)].map(([, k, v]) => [k!, v!.replaceAll("'\\''", "'")]));
  const pid = Number(vars.get('CELFARM_DEMO_PID'));
  const shown = relative(process.cwd(), file) || file;
  if (!running(pid) || !vars.get('REDIS_URL')) return { env, stale: `${shown} (its demo, pid ${pid}, is no longer running)` };
  return { env: { ...env, REDIS_URL: vars.get('REDIS_URL'), REDIS_PREFIX: env.REDIS_PREFIX || vars.get('REDIS_PREFIX') }, demo: shown };
}

/** The URL without its password, for messages. */
function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

/** The Redis the config names, for messages: the URL without its password, or the Cluster's seeds. */
function shownRedis(config: Config): string {
  const seeds = config.REDIS_CLUSTER_NODES;
  return seeds?.length ? `the Redis Cluster at ${seeds.map((n) => `${n.host}:${n.port}`).join(',')}` : `Redis at ${shownUrl(config.REDIS_URL)}`;
}

function need(value: string | undefined, flag: string): string {
  if (!value) throw new UsageError(`--${flag} is required`);
  return value;
}

function project(value: string | undefined): string {
  const p = need(value, 'project');
  const r = projectIdSchema.safeParse(p);
  if (!r.success) throw new UsageError(`--project ${p}: ${r.error.issues[0]?.message ?? 'invalid'}`);
  return p;
}

function scopes(value: string | undefined): Scope[] {
  const list = need(value, 'scopes').split(',').map((s) => s.trim()).filter(Boolean);
  const bad = list.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (bad.length || list.length === 0) throw new UsageError(`--scopes: ${bad.join(', ') || '(none)'} — choose from ${SCOPES.join(', ')}`);
  return list as Scope[];
}

/** Shots created at or after `since` (every shot when null), newest first, all projects. */
async function* shotsSince(shots: ShotStore, since: number | null): AsyncGenerator<ShotRecord> {
  let before: string | undefined;
  for (;;) {
    const page = await shots.list({ limit: 500, ...(before ? { before } : {}) });
    for (const s of page.shots) {
      if (since !== null && Date.parse(s.createdAt) < since) return;
      yield s;
    }
    if (!page.next) return;
    before = page.next;
  }
}

async function run(store: KeyStore, shots: ShotStore, argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      project: { type: 'string' },
      name: { type: 'string' },
      scopes: { type: 'string' },
      'rate-limit': { type: 'string' },
      id: { type: 'string' },
      host: { type: 'string' },
      since: { type: 'string' },
      all: { type: 'boolean' },
    },
  });
  const command = positionals.join(' ');
  switch (command) {
    case 'keys create': {
      const p = project(values.project);
      const name = need(values.name, 'name');
      const rate = values['rate-limit'] === undefined ? undefined : Number(values['rate-limit']);
      if (rate !== undefined && !(rate > 0)) throw new UsageError('--rate-limit must be a positive number of requests per second');
      const { key, token } = await store.create(p, name, scopes(values.scopes), rate);
      console.error(`created ${key.id} "${key.name}" in project ${key.project} with scopes ${key.scopes.join(',')}; the token (shown once):`);
      console.log(token);
      return;
    }
    case 'keys list': {
      const keys = await store.list(project(values.project));
      for (const k of keys) {
        console.log([k.id, k.name, k.scopes.join(','), k.createdAt, k.revokedAt ? `revoked ${k.revokedAt}` : 'live', k.rateLimit ? `${k.rateLimit}/s` : ''].join('\t').trimEnd());
      }
      if (keys.length === 0) console.error('no keys');
      return;
    }
    case 'keys revoke': {
      const p = project(values.project);
      const id = need(values.id, 'id');
      if (!(await store.revoke(p, id))) throw new Error(`no key ${id} in project ${p}`);
      console.error(`revoked ${id}`);
      return;
    }
    case 'projects list': {
      for (const p of await store.projects()) {
        console.log([p.id, p.name, p.createdAt, p.webhookAllowHosts.length ? `webhooks: ${p.webhookAllowHosts.join(',')}` : ''].join('\t').trimEnd());
      }
      return;
    }
    case 'webhooks allow':
    case 'webhooks disallow': {
      const p = project(values.project);
      const host = need(values.host, 'host');
      const updated = command === 'webhooks allow' ? await store.allowWebhookHost(p, host) : await store.disallowWebhookHost(p, host);
      console.error(`project ${p} webhook hosts: ${updated.webhookAllowHosts.join(', ') || '(none)'}`);
      return;
    }
    case 'shots drop-tallies': {
      if ((values.since === undefined) === (values.all !== true)) throw new UsageError('shots drop-tallies: give --since <ISO time> or --all');
      const since = values.since === undefined ? null : Date.parse(values.since);
      if (since !== null && Number.isNaN(since)) throw new UsageError(`--since: not an ISO time: ${values.since}`);
      let looked = 0;
      let dropped = 0;
      for await (const s of shotsSince(shots, since)) {
        looked++;
        if (await shots.dropTally(s.id)) dropped++;
      }
      console.error(`dropped the tally of ${dropped} of ${looked} shots ${since === null ? 'in all' : `created since ${new Date(since).toISOString()}`}; their views read their frame records whole`);
      return;
    }
    default:
      throw new UsageError(command ? `unknown command: ${command}` : 'no command');
  }
}

async function main(): Promise<number> {
  const { env, demo, stale } = target(process.env, process.env.CELFARM_DEMO_ENV || DEMO_FARM_ENV);
  const config = loadConfig(env);
  if (demo) console.error(`using the running demo's Redis, ${shownUrl(config.REDIS_URL)} (from ${demo})`);
  // One attempt, no reconnects: this command either reaches Redis at once or says why not.
  const redis = connectRedis(config, { maxRetriesPerRequest: 2, lazyConnect: true, connectTimeout: 5_000, reconnect: false });
  // Kept for the message (connect() itself rejects with "Connection is closed"); handled, so
  // ioredis prints no trace of its own.
  let cause: unknown;
  redis.on('error', (e: unknown) => (cause = e));
  try {
    try {
      await redis.connect();
    } catch (e) {
      const where = demo ? `the running demo's Redis, ${shownUrl(config.REDIS_URL)} (${demo})` : shownRedis(config);
      const why = cause ?? e;
      throw new Error(
        `cannot reach ${where} (${why instanceof Error ? why.message : String(why)}): set REDIS_URL (or REDIS_CLUSTER_NODES, and REDIS_PREFIX) to the farm's Redis, ` +
          `or start \`npm run demo -- --keep\`, whose Redis this command finds by itself${stale ? `; ignored ${stale}` : ''}`,
      );
    }
    await run(new KeyStore(redis, config.REDIS_PREFIX), new ShotStore(redis, config.REDIS_PREFIX), process.argv.slice(2));
    return 0;
  } finally {
    redis.disconnect();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`${(e as Error).message}\n${USAGE}`);
      process.exit(2);
    }
    console.error(e instanceof ConfigError || e instanceof Error ? e.message : String(e));
    process.exit(1);
  },
);
