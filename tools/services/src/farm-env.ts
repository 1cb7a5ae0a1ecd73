/**
 * The connection file of a running demo farm: shell `export NAME='value'` lines, so a user can
 * `. .cache/demo/farm.env`, and the admin command (apps/api/src/admin.ts) reads it when
 * REDIS_URL is not set. The demo writes it once its farm is up and removes it when it stops.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Where the demo writes it, relative to the repository root. */
export const DEMO_FARM_ENV = '.cache/demo/farm.env';

const quote = (v: string) => `'${v.replaceAll("'", "'\\''")}'`;

/** Writes `vars` as export lines after `#` comment lines; readable by its owner only (it holds a key). */
export async function writeFarmEnv(path: string, vars: Record<string, string>, comments: string[] = []): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await rm(path, { force: true }); // so the mode below applies
  const lines = [...comments.map((c) => `# ${c}`), ...Object.entries(vars).map(([k, v]) => `export ${k}=${quote(v)}`)];
  await writeFile(path, `${lines.join('\n')}\n`, { mode: 0o600 });
}

export async function removeFarmEnv(path: string): Promise<void> {
  await rm(path, { force: true });
}
