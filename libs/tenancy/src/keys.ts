/**
 * Projects and API keys. A key belongs to one project and carries scopes (submit, read, admin).
 * Only the sha256 of a token is stored; the token itself is shown once, at creation. Every
 * request looks the key up, so a revocation takes effect at once.
 */
import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { z } from 'zod';
import { sha256Hex } from '@celfarm/pipeline/hash';
import { projectIdSchema } from './project-id.ts';
import { SCOPES, type Scope } from './scopes.ts';

export { SCOPES, type Scope } from './scopes.ts';

export const apiKeySchema = z.object({
  id: z.string(),
  project: z.string(),
  name: z.string(),
  scopes: z.array(z.enum(SCOPES)),
  createdAt: z.string(),
  revokedAt: z.string().optional(),
  /** Requests per second this key may make (token bucket refill); default from config. */
  rateLimit: z.number().positive().optional(),
});
export type ApiKey = z.infer<typeof apiKeySchema>;

export const projectSchema = z.object({
  id: projectIdSchema,
  name: z.string(),
  createdAt: z.string(),
  /** Webhook targets on private or loopback addresses allowed for this project (host or host:port). */
  webhookAllowHosts: z.array(z.string()).default([]),
});
export type Project = z.infer<typeof projectSchema>;

/** A webhook allow-list entry: a host name, an IPv4 address or a bracketed IPv6 one, with an optional port. */
export const webhookHostSchema = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^([a-z0-9.-]+|\[[0-9a-f:.]+\])(:\d{1,5})?$/, 'a host or host:port, e.g. 127.0.0.1:8765');

function parseWebhookHost(host: string): string {
  const r = webhookHostSchema.safeParse(host);
  if (!r.success) throw new Error(`invalid webhook host ${JSON.stringify(host)}: ${r.error.issues[0]?.message ?? 'invalid'}`);
  return r.data;
}

/** What is stored of a token (or a session id): its sha256, never the token itself. */
export const hashToken = (token: string): string => sha256Hex(token);

export class KeyStore {
  constructor(
    readonly redis: Redis | Cluster,
    readonly prefix = 'celfarm',
    private readonly clock: () => Date = () => new Date(),
  ) {}

  private k = {
    projects: () => `${this.prefix}:projects`,
    key: (hash: string) => `${this.prefix}:apikey:${hash}`,
    keyId: (id: string) => `${this.prefix}:apikeyid:${id}`,
    projectKeys: (p: string) => `${this.prefix}:project:${p}:keys`,
  };

  async ensureProject(id: string, name = id): Promise<Project> {
    projectIdSchema.parse(id);
    const existing = await this.project(id);
    if (existing) return existing;
    const project: Project = { id, name, createdAt: this.clock().toISOString(), webhookAllowHosts: [] };
    await this.redis.hsetnx(this.k.projects(), id, JSON.stringify(project));
    return (await this.project(id))!;
  }

  async project(id: string): Promise<Project | null> {
    const raw = await this.redis.hget(this.k.projects(), id);
    return raw ? projectSchema.parse(JSON.parse(raw)) : null;
  }

  async projects(): Promise<Project[]> {
    const all = await this.redis.hgetall(this.k.projects());
    return Object.values(all).map((v) => projectSchema.parse(JSON.parse(v))).sort((a, b) => a.id.localeCompare(b.id));
  }

  async updateProject(id: string, patch: Partial<Omit<Project, 'id'>>): Promise<Project> {
    const cur = await this.project(id);
    if (!cur) throw new Error(`project ${id} does not exist`);
    const next = projectSchema.parse({ ...cur, ...patch });
    await this.redis.hset(this.k.projects(), id, JSON.stringify(next));
    return next;
  }

  /** Creates a key (and its project when missing); returns the record and the token, once. */
  async create(project: string, name: string, scopes: Scope[], rateLimit?: number): Promise<{ key: ApiKey; token: string }> {
    await this.ensureProject(project);
    const token = `cf_${randomBytes(32).toString('base64url')}`;
    const hash = hashToken(token);
    const key: ApiKey = apiKeySchema.parse({
      id: `key_${randomBytes(8).toString('hex')}`,
      project,
      name,
      scopes: [...new Set(scopes)],
      createdAt: this.clock().toISOString(),
      ...(rateLimit ? { rateLimit } : {}),
    });
    await this.redis
      .multi()
      .set(this.k.key(hash), JSON.stringify(key))
      .set(this.k.keyId(key.id), hash)
      .sadd(this.k.projectKeys(project), key.id)
      .exec();
    return { key, token };
  }

  /** The live (not revoked) key of a token, or null. */
  async verify(token: string): Promise<ApiKey | null> {
    const key = await this.identify(token);
    return key && !key.revokedAt ? key : null;
  }

  /**
   * The key a token belongs to, revoked or not (null for an unknown token): who made a refused
   * request, for the audit log. Authorise with `verify`, never with this.
   */
  async identify(token: string): Promise<ApiKey | null> {
    if (!token.startsWith('cf_')) return null;
    const raw = await this.redis.get(this.k.key(hashToken(token)));
    return raw ? apiKeySchema.parse(JSON.parse(raw)) : null;
  }

  /** The key with this id when it exists and is not revoked (sessions re-check it every request). */
  async live(id: string): Promise<ApiKey | null> {
    const key = await this.byId(id);
    return key && !key.revokedAt ? key : null;
  }

  async byId(id: string): Promise<ApiKey | null> {
    const hash = await this.redis.get(this.k.keyId(id));
    if (!hash) return null;
    const raw = await this.redis.get(this.k.key(hash));
    return raw ? apiKeySchema.parse(JSON.parse(raw)) : null;
  }

  async list(project: string): Promise<ApiKey[]> {
    const ids = await this.redis.smembers(this.k.projectKeys(project));
    const keys = await Promise.all(ids.map((id) => this.byId(id)));
    return keys.filter((k): k is ApiKey => !!k).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** Allows webhook targets on `host` (host or host:port, lowercased) for an existing project. */
  async allowWebhookHost(project: string, host: string): Promise<Project> {
    const cur = await this.mustProject(project);
    const h = parseWebhookHost(host);
    return cur.webhookAllowHosts.includes(h) ? cur : this.updateProject(project, { webhookAllowHosts: [...cur.webhookAllowHosts, h] });
  }

  async disallowWebhookHost(project: string, host: string): Promise<Project> {
    const cur = await this.mustProject(project);
    const h = parseWebhookHost(host);
    return this.updateProject(project, { webhookAllowHosts: cur.webhookAllowHosts.filter((x) => x !== h) });
  }

  private async mustProject(id: string): Promise<Project> {
    const p = await this.project(id);
    if (!p) throw new Error(`project ${id} does not exist (creating a key creates its project)`);
    return p;
  }

  /** Revokes a key of `project`; false when there is no such key. Takes effect on the next request. */
  async revoke(project: string, id: string): Promise<boolean> {
    const hash = await this.redis.get(this.k.keyId(id));
    if (!hash) return false;
    const raw = await this.redis.get(this.k.key(hash));
    if (!raw) return false;
    const key = apiKeySchema.parse(JSON.parse(raw));
    if (key.project !== project) return false;
    if (!key.revokedAt) await this.redis.set(this.k.key(hash), JSON.stringify({ ...key, revokedAt: this.clock().toISOString() }));
    return true;
  }
}
