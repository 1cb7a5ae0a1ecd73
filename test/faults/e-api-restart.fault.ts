/**
 * (e) The API SIGKILLed mid-shot (it also runs the webhook dispatcher and deliveries), restarted
 * a second later: the shot completes and every event reaches the receiver once — the dead
 * dispatcher's pending entries are claimed after 30 s idle, so deliveries may come late.
 */
import type { ShotView } from '../harness.ts';
import { farmFor, scenario } from './scenario.ts';

const FRAMES = 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const finished = (s: ShotView) => ['completed', 'failed', 'cancelled'].includes(s.state);

scenario({ id: 'e', title: `API SIGKILL mid-shot and restart (${FRAMES} frames, webhooks counted)` }, 240_000, async () => {
  const farm = await farmFor({ name: 'e-api-restart', workers: 2 });
  const t0 = performance.now();
  const id = await farm.submit(FRAMES, { mode: 'vanilla', steps: 8, seed: 4 });
  const problems: string[] = [];
  const mid = await farm.waitForShot(id, (s) => finished(s) || s.counts.completed >= FRAMES / 4, 60_000, 50);
  const completedAtKill = mid.shot?.counts.completed ?? 0;
  const deliveredAtKill = farm.receiver.of(id).length;
  if (mid.shot && finished(mid.shot)) problems.push(`the shot ended (${mid.shot.state}) before the API was killed`);
  // Held (SIGSTOP) first, to read which deliveries it has in flight: a kill may post those again.
  farm.api.child.kill('SIGSTOP');
  const inFlight = await farm.deliveriesInFlight();
  const tKill = performance.now();
  const killedAt = Date.now();
  await farm.api.kill('SIGKILL');
  await sleep(1000);
  const restartedAt = Date.now();
  await farm.startApi();
  const down = (performance.now() - tKill) / 1000;
  const done = await farm.waitForShot(id, finished, 150_000, 250);
  const tEnd = Date.now();
  const seconds = (performance.now() - t0) / 1000;
  if (done.timedOut) problems.push(`shot still ${done.shot?.state} 150 s after the API restart`);
  // The dead dispatcher's entries are claimed after 30 s idle, checked every 30 s: up to ~60 s.
  const checks = await farm.check([{ id, frames: FRAMES }], { webhookWaitMs: 90_000, deliveringDied: { at: killedAt, replacedAt: restartedAt, inFlight } });
  const lastDelivery = Math.max(...farm.receiver.of(id).map((d) => d.at));
  return {
    checks,
    counts: {
      'API SIGKILLs': `1 after ${completedAtKill} frames and ${deliveredAtKill} deliveries, down ${down.toFixed(1)} s`,
      'last delivery': `${((lastDelivery - tEnd) / 1000).toFixed(1)} s after the shot ended`,
      'submit→end': `${seconds.toFixed(1)} s`,
    },
    problems,
  };
});
