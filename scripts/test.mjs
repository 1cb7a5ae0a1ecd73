#!/usr/bin/env node
// One test command for the whole repository: builds the generated model packs the tests need,
// then runs every `*.test.ts` under libs/, tools/, apps/ and test/ with Node's own test runner.
// Usage: npm test [-- <path filter>...]
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ensureDashboard, ensureDeps } from './ensure-deps.mjs';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);
ensureDeps(root);

function collect(dir, out) {
  let entries;
  try { entries = readdirSync(dir); } catch { return out; }
  for (const name of entries) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const full = join(dir, name);
    if (statSync(full).isDirectory()) collect(full, out);
    else if (name.endsWith('.test.ts')) out.push(full);
  }
  return out;
}

const files = ['libs', 'tools', 'apps', 'clients', 'test']
  .flatMap((d) => collect(join(root, d), []))
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((p) => f.includes(p)))
  .sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}

const build = spawnSync(process.execPath, ['--import', 'tsx', 'tools/model-kit/src/cli.ts', 'build', '--out', 'packs'], {
  cwd: root, stdio: 'inherit',
});
if (build.status !== 0) process.exit(build.status ?? 1);

ensureDashboard(root);

const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], {
  cwd: root, stdio: 'inherit',
});
process.exit(run.status ?? 1);
