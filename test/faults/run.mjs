#!/usr/bin/env node
// The fault-injection suite (`npm run faults`): runs every test/faults/*.fault.ts one after the
// other, each in its own process group on its own real farm, then prints one line of counts per
// scenario. Bounded: each scenario has its own time limit (in its file), and this runner kills a
// scenario's whole process group (farm included) when it outlives min(8 min, what is left of the
// suite's budget: 22 min by default, as the scenarios' own limits add up to ~21.7 min). Exit
// status 1 when any scenario failed or did not finish.
// Usage: npm run faults [-- <letter or name filter>... --budget-s <seconds>]
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'node:timers';
import { ensureDeps } from '../../scripts/ensure-deps.mjs';

const root = new URL('../..', import.meta.url).pathname;
const here = join(root, 'test', 'faults');
const args = process.argv.slice(2);
const budgetAt = args.indexOf('--budget-s');
const budgetS = budgetAt >= 0 ? Number(args.splice(budgetAt, 2)[1]) : 22 * 60;
const filters = args;
const PER_SCENARIO_MAX_S = 8 * 60;
ensureDeps(root);

const files = readdirSync(here)
  .filter((f) => f.endsWith('.fault.ts'))
  // A one-letter filter names a scenario by its letter (a-…); longer ones match in the file name.
  .filter((f) => filters.length === 0 || filters.some((p) => (p.length === 1 ? f.startsWith(`${p}-`) : f.includes(p))))
  .sort();
if (files.length === 0) {
  console.error('no fault scenarios matched');
  process.exit(1);
}
const results = join(root, 'out', 'faults', 'results');
rmSync(results, { recursive: true, force: true });

const GRACE_S = 30;
let current;
// Stopped from outside (Ctrl-C, a CI timeout): take the running scenario's process group along.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (current) {
      try {
        process.kill(-current.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

const t0 = Date.now();
const runs = [];
for (const file of files) {
  const left = budgetS - (Date.now() - t0) / 1000;
  if (left < 30) {
    runs.push({ file, status: `not run: the suite's ${budgetS} s budget is spent` });
    continue;
  }
  const limitS = Math.min(PER_SCENARIO_MAX_S, left);
  console.log(`\n== ${relative(root, join(here, file))} (hard limit ${limitS.toFixed(0)} s)`);
  const started = Date.now();
  const resultPath = join(results, `${file.split('-')[0]}.json`);
  // Own process group: on a hard timeout the scenario, its Redis, API and workers go together.
  const child = spawn(process.execPath, ['--import', 'tsx', '--test-reporter=spec', join(here, file)], {
    cwd: root,
    stdio: 'inherit',
    detached: true,
  });
  current = child;
  const killGroup = () => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  let killed = '';
  let stuck = false;
  const timer = setTimeout(() => {
    killed = `killed after its hard limit of ${limitS.toFixed(0)} s`;
    killGroup();
  }, limitS * 1000);
  // A scenario that wrote its result but does not exit (a handle left open, a stuck exit) gets
  // GRACE_S, then goes: its verdict is in the result.
  let grace;
  const watch = setInterval(() => {
    if (grace || !existsSync(resultPath)) return;
    grace = setTimeout(() => {
      stuck = true;
      killed = `did not exit within ${GRACE_S} s of writing its result: killed`;
      killGroup();
    }, GRACE_S * 1000);
  }, 1000);
  const code = await new Promise((resolve) => child.on('exit', (c, signal) => resolve(c ?? signal)));
  clearTimeout(timer);
  clearInterval(watch);
  clearTimeout(grace);
  current = undefined;
  // Anything of that group still alive (a process the scenario left behind) goes too.
  killGroup();
  const seconds = (Date.now() - started) / 1000;
  runs.push({ file, code, seconds, stuck, status: killed || `exit ${code}` });
}

console.log('\n== fault suite summary');
let failed = 0;
for (const run of runs) {
  const id = run.file.split('-')[0];
  const path = join(results, `${id}.json`);
  const result = existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : undefined;
  // A scenario killed after its result only for not exiting keeps its verdict (with a note).
  const ok = result?.pass === true && (run.code === 0 || run.stuck);
  if (!ok) failed++;
  if (result) console.log(result.line);
  else console.log(`[${id}] FAIL ${run.file}: no result (${run.status}${run.seconds !== undefined ? `, ${run.seconds.toFixed(1)} s` : ''})`);
  if (result && !ok && result.pass) console.log(`    - the scenario process ended with ${run.status}`);
  if (result && run.stuck) console.log(`    (note) the scenario process ${run.status}`);
  for (const p of result?.allProblems ?? []) console.log(`    - ${p}`);
  for (const n of new Set((result?.checks ?? []).flatMap((c) => c.notes ?? []))) console.log(`    (note) ${n}`);
}
console.log(`${runs.length - failed} of ${runs.length} scenarios passed in ${((Date.now() - t0) / 1000).toFixed(0)} s; logs of every process in out/faults/<scenario>/`);
process.exit(failed ? 1 : 0);
