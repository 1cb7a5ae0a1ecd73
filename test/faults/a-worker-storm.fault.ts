/**
 * (a) Worker SIGKILL storm on a long shot: 3,000 small frames (MAX_FRAMES raised for it) on 3
 * workers; every 2.5 s (sooner when the shot would end first; or as soon as one is up again) a
 * random worker that is up gets SIGKILL,
 * and a new one is started at once, until 45 kills. The shot must still complete with every frame
 * rendered once and told once. The storm takes 2–4 minutes here, set by how fast a worker boots
 * under load; the shot is long enough to outlast it (fewer than 40 kills before it ends fails the
 * scenario: the storm would not have been one).
 */
import { randomInt } from 'node:crypto';
import type { ShotView } from '../harness.ts';
import { FaultFarm } from './farm.ts';
import { farmFor, scenario } from './scenario.ts';

const FRAMES = 3000;
const KILLS = 45;
/** The issue's bar: fewer kills than this before the shot ended means the storm was too short. */
const MIN_KILLS = 40;
const EVERY_MS = 2500;
/** The storm stops after this long even with fewer kills (workers too slow to come up). */
const STORM_MAX_MS = 240_000;
const SHOT_WAIT_MS = 150_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const finished = (s: ShotView) => ['completed', 'failed', 'cancelled'].includes(s.state);

scenario({ id: 'a', title: `worker SIGKILL storm (${KILLS} kills, ${FRAMES} frames, 3 workers)` }, 460_000, async () => {
  // Workers that are up render at niceness 10, so the replacements boot in seconds, not tens of
  // seconds, on this machine's two cores: the storm can keep its pace.
  const farm = await farmFor({ name: 'a-worker-storm', workers: 3, niceWhenReady: 10, env: { MAX_FRAMES: String(FRAMES) } });
  const t0 = performance.now();
  const id = await farm.submit(FRAMES, { mode: 'vanilla', steps: 4, seed: 1 });
  let kills = 0;
  let midFrame = 0;
  let last: ShotView | undefined;
  let lastKill = t0;
  let endedEarly = false;
  let every = EVERY_MS;
  while (kills < KILLS && performance.now() - t0 < STORM_MAX_MS) {
    await sleep(Math.max(100, lastKill + every - performance.now()));
    const up = farm.workers.filter((w) => FaultFarm.isReady(w));
    if (up.length === 0) continue;
    last = (await farm.view(id)) ?? last;
    if (last && finished(last)) {
      endedEarly = true;
      break;
    }
    // Paced by the shot as well as the clock: when the frames left would not outlast the kills
    // left at this pace (a fast machine), the kills come sooner, down to one per 500 ms.
    if (last && last.counts.completed > 0) {
      const elapsed = performance.now() - t0;
      const leftMs = ((FRAMES - last.counts.completed) * elapsed) / last.counts.completed;
      every = Math.min(EVERY_MS, Math.max(500, leftMs / (KILLS - kills + 5)));
    }
    const victim = up[randomInt(up.length)]!;
    if (last?.active.some((f) => f.worker === victim.name)) midFrame++;
    await farm.killWorker(victim);
    kills++;
    lastKill = performance.now();
    // Started at once, not awaited: the next kill may come before it is up, as on a bad night.
    await farm.startWorker(false);
  }
  const stormSeconds = (performance.now() - t0) / 1000;
  const done = await farm.waitForShot(id, finished, SHOT_WAIT_MS, 1000);
  const shotSeconds = (performance.now() - t0) / 1000;
  const problems: string[] = [];
  if (kills < MIN_KILLS) {
    problems.push(`only ${kills} kills (wanted ≥ ${MIN_KILLS}) ${endedEarly ? 'before the shot ended' : `in the storm's ${STORM_MAX_MS / 1000} s (workers slow to come up)`}`);
  }
  if (done.timedOut) problems.push(`shot still ${done.shot?.state} ${SHOT_WAIT_MS / 1000} s after the storm`);
  const checks = await farm.check([{ id, frames: FRAMES }]);
  return {
    checks,
    counts: {
      kills: `${kills} (${midFrame} on a worker with an active frame)`,
      storm: `${stormSeconds.toFixed(0)} s`,
      'worker boot': `median ${median(farm.bootSeconds).toFixed(1)} s`,
      'submit→end': `${shotSeconds.toFixed(1)} s`,
    },
    problems,
  };
});
