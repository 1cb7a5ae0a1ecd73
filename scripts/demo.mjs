#!/usr/bin/env node
// `npm run demo` (the farm) and `npm run demo:pipeline` (the pipeline alone): installs npm
// dependencies when missing, and Debian's redis-server when the farm needs one (no REDIS_URL;
// as root or with passwordless sudo, see system-tools.mjs), then runs scripts/demo.ts or
// scripts/pipeline-demo.ts.
import { spawnSync } from 'node:child_process';
import { ensureDashboard, ensureDeps } from './ensure-deps.mjs';
import { ensureSystemToolsOrExit } from './system-tools.mjs';

const root = new URL('..', import.meta.url).pathname;
const pipeline = process.argv[2] === '--pipeline';
ensureDeps(root);
if (!pipeline) {
  if (!process.env.REDIS_URL) ensureSystemToolsOrExit(['redis-server'], 'npm run demo (or set REDIS_URL to a Redis of yours)');
  ensureDashboard(root);
}
const args = process.argv.slice(2);
const script = pipeline ? 'scripts/pipeline-demo.ts' : 'scripts/demo.ts';
const rest = pipeline ? args.slice(1) : args;
const r = spawnSync(process.execPath, ['--import', 'tsx', script, ...rest], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
