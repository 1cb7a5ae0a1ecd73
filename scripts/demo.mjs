#!/usr/bin/env node
// `npm run demo` (the farm) and `npm run demo:pipeline` (the pipeline alone): installs npm
// dependencies when missing, then runs scripts/demo.ts or scripts/pipeline-demo.ts.
import { spawnSync } from 'node:child_process';
import { ensureDashboard, ensureDeps } from './ensure-deps.mjs';

const root = new URL('..', import.meta.url).pathname;
ensureDeps(root);
if (process.argv[2] !== '--pipeline') ensureDashboard(root);
const args = process.argv.slice(2);
const script = args[0] === '--pipeline' ? 'scripts/pipeline-demo.ts' : 'scripts/demo.ts';
const rest = args[0] === '--pipeline' ? args.slice(1) : args;
const r = spawnSync(process.execPath, ['--import', 'tsx', script, ...rest], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
