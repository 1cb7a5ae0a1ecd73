/**
 * The object-store port the farm speaks, and its S3 adapter (any S3-compatible endpoint through
 * @aws-sdk/client-s3). Domain code depends on {@link ObjectStore}, never on the SDK.
 */
import {
  CreateBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { sha256Tap } from '@celfarm/pipeline/hash';
import { CappedBackoffRetry, DEFAULT_RETRY_POLICY, isUnreachable, StoreUnavailableError, type RetryPolicy } from './retry.ts';

export interface ObjectInfo {
  key: string;
  size: number;
  etag?: string;
}

export interface ObjectStore {
  put(key: string, body: Uint8Array, contentType?: string): Promise<void>;
  /** The object's bytes, or null when it does not exist. */
  get(key: string): Promise<Uint8Array | null>;
  /**
   * The object's bytes as a stream, or null when it does not exist: for objects too large to
   * hold in memory (model packs). The caller must consume or destroy the stream.
   */
  getStream(key: string): Promise<Readable | null>;
  head(key: string): Promise<ObjectInfo | null>;
  /** Every key under `prefix`, sorted. */
  list(prefix: string): Promise<ObjectInfo[]>;
  deletePrefix(prefix: string): Promise<number>;
  presignPut(key: string, seconds: number, contentType?: string): Promise<string>;
  presignGet(key: string, seconds: number): Promise<string>;
  /** Throws when the bucket cannot be reached (one attempt, no retries: a probe). */
  ping(): Promise<void>;
}

export interface S3StoreOptions {
  endpoint?: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: boolean;
  /** Attempts and backoff per call (default {@link DEFAULT_RETRY_POLICY}). */
  retry?: Partial<RetryPolicy>;
  /** Milliseconds to wait for a TCP connection before the attempt counts as failed (default 5000). */
  connectTimeoutMs?: number;
}

/** The S3 variables of the farm's configuration (libs/config), as the adapter's options. */
export interface S3Config {
  S3_ENDPOINT?: string;
  S3_REGION: string;
  S3_BUCKET: string;
  S3_ACCESS_KEY_ID: string;
  S3_SECRET_ACCESS_KEY: string;
  S3_FORCE_PATH_STYLE: boolean;
  S3_MAX_ATTEMPTS?: number;
  S3_RETRY_MAX_DELAY_MS?: number;
}

export const s3OptionsFrom = (c: S3Config, bucket = c.S3_BUCKET): S3StoreOptions => ({
  endpoint: c.S3_ENDPOINT,
  region: c.S3_REGION,
  bucket,
  accessKeyId: c.S3_ACCESS_KEY_ID,
  secretAccessKey: c.S3_SECRET_ACCESS_KEY,
  forcePathStyle: c.S3_FORCE_PATH_STYLE,
  retry: {
    ...(c.S3_MAX_ATTEMPTS !== undefined ? { maxAttempts: c.S3_MAX_ATTEMPTS } : {}),
    ...(c.S3_RETRY_MAX_DELAY_MS !== undefined ? { maxDelayMs: c.S3_RETRY_MAX_DELAY_MS } : {}),
  },
});

/**
 * An object-store location as configuration writes it (PACK_S3_PREFIX): `s3://bucket/prefix`
 * names its own bucket, a bare prefix lives in `defaultBucket`. The prefix comes back without
 * leading or trailing slashes.
 */
export function parseS3Location(location: string, defaultBucket: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(location);
  const [bucket, prefix] = m ? [m[1]!, m[2]!] : [defaultBucket, location];
  return { bucket, prefix: prefix.replace(/^\/+|\/+$/g, '') };
}

/**
 * Runs `use` with a store of `bucket`: `objects` itself when that is its bucket, else a client
 * made from `config` for it and destroyed once `use` settles.
 */
export async function withBucket<T>(config: S3Config, objects: S3ObjectStore, bucket: string, use: (store: S3ObjectStore) => Promise<T>): Promise<T> {
  if (bucket === objects.bucket) return use(objects);
  const other = new S3ObjectStore(s3OptionsFrom(config, bucket));
  try {
    return await use(other);
  } finally {
    other.destroy();
  }
}

const isNotFound = (e: unknown) => {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err.name === 'NoSuchKey' || err.name === 'NotFound' || err.$metadata?.httpStatusCode === 404;
};

const PRESIGN_CACHE_MAX = 50_000;

/** Runs one SDK call; an unreachable store surfaces as {@link StoreUnavailableError}, anything else unchanged. */
async function call<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (!isUnreachable(e)) throw e;
    const err = new StoreUnavailableError(`${what}: object store unreachable (${e instanceof Error ? `${(e as { code?: string }).code ?? e.name}: ${e.message}` : String(e)})`);
    err.cause = e;
    throw err;
  }
}

export class S3ObjectStore implements ObjectStore {
  readonly client: S3Client;
  readonly bucket: string;
  /** Presigned GETs reused for half their lifetime: shot views list thousands of frames. */
  private readonly presigned = new Map<string, { url: string; until: number }>();
  /** A client that tries once, for {@link ping}: a probe must answer now, not after a minute of retries. */
  private probeClient: S3Client | undefined;

  constructor(private readonly opts: S3StoreOptions) {
    this.client = new S3Client(clientConfig(opts, new CappedBackoffRetry(retryPolicy(opts.retry))));
    this.bucket = opts.bucket;
  }

  /** Creates the bucket when missing (embedded endpoints start empty). */
  async ensureBucket(): Promise<void> {
    try {
      await call(`HEAD bucket ${this.bucket}`, () => this.client.send(new HeadBucketCommand({ Bucket: this.bucket })));
    } catch (e) {
      if (!isNotFound(e)) throw e;
      await call(`CREATE bucket ${this.bucket}`, () => this.client.send(new CreateBucketCommand({ Bucket: this.bucket })));
    }
  }

  async put(key: string, body: Uint8Array, contentType = 'application/octet-stream'): Promise<void> {
    await call(`PUT ${key}`, () => this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType })));
  }

  async get(key: string): Promise<Uint8Array | null> {
    try {
      return await call(`GET ${key}`, async () => {
        const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
        return r.Body ? await r.Body.transformToByteArray() : new Uint8Array();
      });
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  async getStream(key: string): Promise<Readable | null> {
    try {
      const r = await call(`GET ${key}`, () => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key })));
      if (!r.Body) return Readable.from([]);
      // In Node the SDK's body is an http.IncomingMessage; anything else would mean another runtime.
      if (!(r.Body instanceof Readable)) throw new Error(`GET ${key}: the S3 client returned a body that is not a Node stream`);
      return r.Body;
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    try {
      const r = await call(`HEAD ${key}`, () => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key })));
      return { key, size: r.ContentLength ?? 0, etag: r.ETag };
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    do {
      const page = token;
      const r = await call(`LIST ${prefix}`, () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: page })),
      );
      for (const o of r.Contents ?? []) if (o.Key) out.push({ key: o.Key, size: o.Size ?? 0, etag: o.ETag });
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async deletePrefix(prefix: string): Promise<number> {
    const keys = await this.list(prefix);
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000).map((k) => ({ Key: k.key }));
      await call(`DELETE ${prefix}…`, () => this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch, Quiet: true } })));
    }
    return keys.length;
  }

  presignPut(key: string, seconds: number, contentType = 'image/png'): Promise<string> {
    return getSignedUrl(this.client, new PutObjectCommand({ Bucket: this.bucket, Key: key, ContentType: contentType }), {
      expiresIn: seconds,
    });
  }

  /** A presigned GET valid for at least `seconds / 2` more seconds (signing is CPU work; cached). */
  async presignGet(key: string, seconds: number): Promise<string> {
    const cacheKey = `${seconds}|${key}`;
    const now = Date.now();
    const hit = this.presigned.get(cacheKey);
    if (hit && hit.until > now) return hit.url;
    const url = await getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: key }), { expiresIn: seconds });
    this.presigned.delete(cacheKey);
    this.presigned.set(cacheKey, { url, until: now + seconds * 500 });
    if (this.presigned.size > PRESIGN_CACHE_MAX) this.presigned.delete(this.presigned.keys().next().value!);
    return url;
  }

  async ping(): Promise<void> {
    this.probeClient ??= new S3Client(clientConfig(this.opts, new CappedBackoffRetry({ ...DEFAULT_RETRY_POLICY, maxAttempts: 1 })));
    const probe = this.probeClient;
    await call(`HEAD bucket ${this.bucket}`, () => probe.send(new HeadBucketCommand({ Bucket: this.bucket })));
  }

  destroy(): void {
    this.client.destroy();
    this.probeClient?.destroy();
  }
}

/** The defaults, with whatever `over` sets. */
export function retryPolicy(over: Partial<RetryPolicy> = {}): RetryPolicy {
  const set = Object.fromEntries(Object.entries(over).filter(([, v]) => v !== undefined)) as Partial<RetryPolicy>;
  return { ...DEFAULT_RETRY_POLICY, ...set };
}

function clientConfig(opts: S3StoreOptions, retryStrategy: CappedBackoffRetry): S3ClientConfig {
  return {
    region: opts.region,
    endpoint: opts.endpoint,
    forcePathStyle: opts.forcePathStyle,
    credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey },
    // Our own strategy: the SDK's standard one shares one retry quota across every call of the
    // client, which an outage drains within a few calls (see retry.ts).
    retryStrategy,
    maxAttempts: retryStrategy.policy.maxAttempts,
    // An endpoint that drops packets would otherwise hold each attempt for the OS connect timeout.
    requestHandler: { connectionTimeout: opts.connectTimeoutMs ?? 5000 },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
}

/** What {@link getToFile} wrote. */
export interface DownloadedFile {
  bytes: number;
  /** sha256 of the bytes written, lowercase hex. */
  sha256: string;
}

/**
 * Streams the object at `key` into `path` (created or truncated), hashing it on the way, so a
 * file of any size passes through a few chunks of memory. Null when the object does not exist
 * (nothing is written then). A failed transfer leaves `path` partly written: write to a
 * temporary name and rename it once the hash is checked.
 */
export async function getToFile(objects: ObjectStore, key: string, path: string): Promise<DownloadedFile | null> {
  const body = await objects.getStream(key);
  if (!body) return null;
  const tap = sha256Tap();
  await pipeline(body, tap.pass, createWriteStream(path));
  return { bytes: tap.bytes, sha256: tap.digest() };
}
