#!/usr/bin/env node
// One test command for the whole repository: installs what the selected tests run for real
// (npm dependencies; Debian's redis-server, promtool, chromium, Python packages: see
// system-tools.mjs), builds the generated model packs, then runs every `*.test.ts` under libs/,
// tools/, apps/, clients/, scripts/ and test/ with Node's own test runner. A test or suite that
// was skipped fails the run, listed by name: a suite that did not run never counts as passed.
// Usage: npm test [-- <path filter>...]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { ensureDashboard, ensureDeps } from './ensure-deps.mjs';
import { ensureSystemToolsOrExit, toolsNeededBy } from './system-tools.mjs';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);

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

const files = ['libs', 'tools', 'apps', 'clients', 'scripts', 'test']
  .flatMap((d) => collect(join(root, d), []))
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((p) => f.includes(p)))
  .sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}

ensureDeps(root);
ensureSystemToolsOrExit(toolsNeededBy(files.map((f) => join(root, f))), 'npm test');

const build = spawnSync(process.execPath, ['--import', 'tsx', 'tools/model-kit/src/cli.ts', 'build', '--out', 'packs'], {
  cwd: root, stdio: 'inherit',
});
if (build.status !== 0) process.exit(build.status ?? 1);

ensureDashboard(root);

// Node's default reporter (spec on a terminal, tap otherwise) plus one that lists what did not run.
const notRunDir = mkdtempSync(join(tmpdir(), 'celfarm-test-'));
const notRunFile = join(notRunDir, 'not-run.jsonl');
const run = spawnSync(process.execPath, [
  '--import', 'tsx', '--test', '--test-concurrency=2',
  `--test-reporter=${process.stdout.isTTY ? 'spec' : 'tap'}`, '--test-reporter-destination=stdout',
  `--test-reporter=${join(root, 'scripts/skip-reporter.mjs')}`, `--test-reporter-destination=${notRunFile}`,
  ...files,
], { cwd: root, stdio: 'inherit' });

let notRun = [];
try {
  notRun = readFileSync(notRunFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
} catch {
  // no reporter output: the runner itself failed, and says so
}
rmSync(notRunDir, { recursive: true, force: true });
const skipped = notRun.filter((n) => n.kind === 'skip');
for (const [kind, list] of [['skipped (did not run)', skipped], ['todo (ran, outcome not counted)', notRun.filter((n) => n.kind === 'todo')]]) {
  if (list.length === 0) continue;
  console.error(`\n${list.length} ${kind}:`);
  for (const n of list) console.error(`  - ${n.what} "${n.name}" in ${relative(root, n.file ?? '?')}${n.reason ? `: ${n.reason}` : ''}`);
}
if (skipped.length > 0) {
  console.error('\nnpm test fails when anything is skipped: make the missing piece available, or fix the test.');
  process.exit(run.status || 1);
}
process.exit(run.status ?? 1);
