/**
 * One fault scenario as a node:test case with its own time limit: it runs, prints one line of
 * counts (frames, faults, outputs, previews, events, duration) whatever the outcome, writes the
 * same to `out/faults/results/<id>.json` for the suite's summary, then asserts that nothing was
 * found wrong — listing everything that was.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { ROOT } from '../harness.ts';
import { FaultFarm, type FaultFarmOptions, type ShotCheck } from './farm.ts';

export interface ScenarioMeta {
  /** a, b, c …: the order of the issue's list. */
  id: string;
  title: string;
}

export interface Outcome {
  checks: ShotCheck[];
  /** Fault counts and timings to print first (kills, outage seconds, shot seconds …). */
  counts: Record<string, string | number>;
  /** Problems found by the scenario itself (a fault that could not be injected, a timeout …). */
  problems?: string[];
}

export interface ScenarioResult extends Outcome {
  id: string;
  title: string;
  pass: boolean;
  seconds: number;
  line: string;
  /** The scenario's and the checks' problems, as printed. */
  allProblems: string[];
}

const started: FaultFarm[] = [];

/** Starts a farm that is stopped after the scenario, even when it timed out. */
export async function farmFor(opts: FaultFarmOptions): Promise<FaultFarm> {
  const farm = await FaultFarm.start(opts);
  started.push(farm);
  return farm;
}

after(async () => {
  await Promise.all(started.map((f) => f.stop()));
  // The farm is gone; should anything still hold the event loop open (a socket nobody closed),
  // say what and exit instead of idling until the runner's hard limit. Unref'd: a clean process
  // exits before this fires.
  setTimeout(() => {
    console.error(`scenario process still busy 5 s after its farm stopped (${process.getActiveResourcesInfo().join(', ')}): exiting`);
    process.exit();
  }, 5000).unref();
});

const sum = (checks: ShotCheck[], f: (c: ShotCheck) => number) => checks.reduce((a, c) => a + f(c), 0);

/** The counts line: the scenario's own counts, then what the checks found, summed over shots. */
export function countsLine(meta: ScenarioMeta, o: Outcome, pass: boolean, seconds: number): string {
  const c = o.checks;
  const frames = sum(c, (x) => x.frames);
  const completed = sum(c, (x) => x.records.completed ?? 0);
  const states = [...new Set(c.map((x) => x.state))].join('/');
  const parts = [
    ...Object.entries(o.counts).map(([k, v]) => `${k} ${v}`),
    c.length > 1 ? `shots ${c.filter((x) => x.state === 'completed').length}/${c.length} completed` : `shot ${states || 'none'}`,
    `frames ${frames}`,
    `records completed ${completed}/${frames}`,
    `outputs ${sum(c, (x) => x.outputs)}/${frames}`,
    `previews ${sum(c, (x) => x.previews)}/${frames}`,
    `shot.json ${sum(c, (x) => (x.manifest ? 1 : 0))}/${c.length}`,
    `events delivered ${sum(c, (x) => x.events.delivered)} of ${sum(c, (x) => x.events.published)} published (${sum(c, (x) => x.events.expected)} for a completed shot), ` +
      `${sum(c, (x) => x.events.deliveries)} deliveries, ${sum(c, (x) => x.events.duplicates)} twice`,
    `${seconds.toFixed(1)} s`,
  ];
  return `[${meta.id}] ${pass ? 'PASS' : 'FAIL'} ${meta.title}: ${parts.join(' · ')}`;
}

/** The checks' problems; with several shots, one line per distinct problem with how many shots have it. */
export function shotProblems(checks: ShotCheck[]): string[] {
  if (checks.length === 1) return checks[0]!.problems;
  const shots = new Map<string, string[]>();
  for (const c of checks) for (const p of c.problems) shots.set(p, [...(shots.get(p) ?? []), c.shot]);
  return [...shots].map(([p, ids]) => `${ids.length === 1 ? `shot ${ids[0]}` : `${ids.length} shots (${ids.slice(0, 3).join(', ')}${ids.length > 3 ? ', …' : ''})`}: ${p}`);
}

/** Registers the scenario as a test limited to `timeoutMs`. */
export function scenario(meta: ScenarioMeta, timeoutMs: number, run: () => Promise<Outcome>): void {
  it(`${meta.id}. ${meta.title}`, { timeout: timeoutMs }, async () => {
    const t0 = performance.now();
    const outcome = await run();
    const seconds = (performance.now() - t0) / 1000;
    const problems = [...(outcome.problems ?? []), ...shotProblems(outcome.checks)];
    const pass = problems.length === 0;
    const line = countsLine(meta, outcome, pass, seconds);
    console.log(line);
    for (const p of problems) console.log(`    - ${p}`);
    for (const n of new Set(outcome.checks.flatMap((c) => c.notes))) console.log(`    (note) ${n}`);
    const result: ScenarioResult = { ...meta, ...outcome, pass, seconds, line, allProblems: problems };
    const dir = join(ROOT, 'out', 'faults', 'results');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `${meta.id}.json`), `${JSON.stringify(result, null, 2)}\n`);
    // The problems are listed above, under the counts line; the assertion only points there.
    assert.ok(pass, `[${meta.id}] ${problems.length} problems (listed under the counts line)`);
  });
}
