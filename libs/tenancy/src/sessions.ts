/**
 * Browser sessions: a random session id (the `celfarm_session` cookie) standing for one API key,
 * kept in Redis with a TTL. Only the sha256 of the id is stored. A session carries no scopes of
 * its own: every request re-reads its key, so revoking the key ends its sessions at once.
 */
import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { z } from 'zod';
import { hashToken } from './keys.ts';

export const sessionSchema = z.object({
  keyId: z.string(),
  createdAt: z.string(),
});
export type Session = z.infer<typeof sessionSchema>;

/** The shape of a session id (base64url of 32 random bytes); anything else is never looked up. */
export const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

export class SessionStore {
  constructor(
    readonly redis: Redis | Cluster,
    readonly prefix = 'celfarm',
    private readonly clock: () => Date = () => new Date(),
  ) {}

  private key(sid: string): string {
    return `${this.prefix}:session:${hashToken(sid)}`;
  }

  /** Opens a session for `keyId` that expires after `ttlSeconds`; returns its id (the cookie value). */
  async create(keyId: string, ttlSeconds: number): Promise<string> {
    const sid = randomBytes(32).toString('base64url');
    const session: Session = { keyId, createdAt: this.clock().toISOString() };
    await this.redis.set(this.key(sid), JSON.stringify(session), 'EX', ttlSeconds);
    return sid;
  }

  /** The session of `sid`, or null when unknown, expired or malformed. */
  async get(sid: string): Promise<Session | null> {
    if (!SESSION_ID.test(sid)) return null;
    const raw = await this.redis.get(this.key(sid));
    return raw ? sessionSchema.parse(JSON.parse(raw)) : null;
  }

  async delete(sid: string): Promise<void> {
    if (SESSION_ID.test(sid)) await this.redis.del(this.key(sid));
  }
}
