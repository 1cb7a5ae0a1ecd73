/**
 * Admin command: bootstraps and manages projects and API keys straight in Redis (no API key
 * needed, so it works before the first key exists). Reads REDIS_URL and REDIS_PREFIX.
 *
 *   node --import tsx apps/api/src/admin.ts keys create --project demo --name td --scopes submit,read,admin [--rate-limit 5]
 *   node --import tsx apps/api/src/admin.ts keys list --project demo
 *   node --import tsx apps/api/src/admin.ts keys revoke --project demo --id key_…
 *   node --import tsx apps/api/src/admin.ts projects list
 *   node --import tsx apps/api/src/admin.ts webhooks allow --project demo --host 127.0.0.1:8765
 *   node --import tsx apps/api/src/admin.ts webhooks disallow --project demo --host 127.0.0.1:8765
 *
 * `keys create` prints the token alone on one stdout line (shown once; everything else goes to
 * stderr), so `TOKEN=$(… keys create …)` works. Exit status: 0 done, 1 failed, 2 bad usage.
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { ConfigError, loadConfig } from '@celfarm/config';
import { KeyStore, SCOPES, projectIdSchema, type Scope } from '@celfarm/tenancy';

const USAGE = `usage: admin.ts <command>
  keys create --project <p> --name <name> --scopes submit,read,admin [--rate-limit <req/s>]
  keys list --project <p>
  keys revoke --project <p> --id <key id>
  projects list
  webhooks allow --project <p> --host <host[:port]>
  webhooks disallow --project <p> --host <host[:port]>`;

class UsageError extends Error {}

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

async function run(store: KeyStore, argv: string[]): Promise<void> {
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
    default:
      throw new UsageError(command ? `unknown command: ${command}` : 'no command');
  }
}

async function main(): Promise<number> {
  const config = loadConfig();
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 2, lazyConnect: true });
  try {
    await redis.connect();
    await run(new KeyStore(redis, config.REDIS_PREFIX), process.argv.slice(2));
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
