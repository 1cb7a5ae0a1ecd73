#!/usr/bin/env node
// `npm run demo`: installs what is missing, builds the analytic pack, and colorizes a generated
// shot end to end. Node builtins only here; the work is in scripts/demo.ts.
import { spawnSync } from 'node:child_process';
import { ensureDeps } from './ensure-deps.mjs';

const root = new URL('..', import.meta.url).pathname;
ensureDeps(root);
const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/demo.ts', ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
