// Installs the workspace's npm dependencies when they are missing or older than the lockfile,
// so `npm run demo` and `npm test` work on a fresh clone. Node builtins only.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export function ensureDeps(root) {
  const marker = join(root, 'node_modules', '.package-lock.json');
  const lock = join(root, 'package-lock.json');
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) return;
  console.error('installing npm dependencies (npm ci) …');
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('npm ci failed');
    process.exit(r.status ?? 1);
  }
}

/**
 * Builds the dashboard (served by the API at /) when apps/dashboard/dist is missing or older than
 * any of its sources (its own, and libs/contract's).
 */
export function ensureDashboard(root) {
  const dash = join(root, 'apps/dashboard');
  const newest = (p) => {
    const s = statSync(p);
    return s.isDirectory() ? Math.max(s.mtimeMs, ...readdirSync(p).map((n) => newest(join(p, n)))) : s.mtimeMs;
  };
  let builtAt = 0;
  try {
    builtAt = statSync(join(dash, 'dist/index.html')).mtimeMs;
  } catch {
    // not built yet
  }
  // The bundle also takes the wire contract's schemas.
  const sources = [
    ...['src', 'index.html', 'vite.config.ts', 'tsconfig.json', 'package.json'].map((p) => newest(join(dash, p))),
    newest(join(root, 'libs/contract/src')),
  ];
  if (builtAt >= Math.max(...sources)) return;
  const r = spawnSync('npm', ['run', 'build', '-w', '@celfarm/dashboard'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('building the dashboard failed');
    process.exit(r.status ?? 1);
  }
}
