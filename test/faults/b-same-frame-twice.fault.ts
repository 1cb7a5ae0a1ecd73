/**
 * (b) The same frame killed twice in a row: the worker holding frame 5 gets SIGKILL as soon as the
 * frame is active, and again when the frame is active on another worker; a new worker is started
 * after each kill. The frame must still be rendered (it failed for no fault of its own), once.
 */
import type { ShotView } from '../harness.ts';
import { farmFor, scenario } from './scenario.ts';

const FRAMES = 12;
const K = 5;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const finished = (s: ShotView) => ['completed', 'failed', 'cancelled'].includes(s.state);

scenario({ id: 'b', title: `the same frame killed twice (frame ${K} of ${FRAMES})` }, 180_000, async () => {
  const farm = await farmFor({ name: 'b-same-frame-twice', workers: 2 });
  const t0 = performance.now();
  // Frames of 1–4 s each here (512²), and the worker is held (SIGSTOP) the moment the frame is
  // seen active on it: the kill lands mid-frame however fast the poll.
  const id = await farm.submit(FRAMES, { mode: 'vanilla', steps: 30, seed: 2 }, 512);
  const problems: string[] = [];
  const victims: string[] = [];
  for (let round = 1; round <= 2; round++) {
    // Active on a live worker that is not one we already killed.
    const seen = await farm.waitForShot(
      id,
      (s) => {
        const f = s.active.find((x) => x.frame === K);
        return finished(s) || (!!f && !!farm.worker(f.worker) && !victims.includes(f.worker!));
      },
      60_000,
      30,
    );
    const f = seen.shot?.active.find((x) => x.frame === K);
    const victim = farm.worker(f?.worker);
    if (seen.timedOut || !victim || !f) {
      const last = await farm.frame(id, K);
      problems.push(`kill ${round}: frame ${K} never became active on a live worker (${last?.state ?? 'no record'}${last?.worker ? ` on ${last.worker}` : ''})`);
      break;
    }
    victim.child.kill('SIGSTOP');
    const held = await farm.frame(id, K);
    await farm.killWorker(victim); // SIGKILL ends a stopped process too
    victims.push(victim.name);
    if (held?.state !== 'active' || held.worker !== victim.name) problems.push(`kill ${round}: frame ${K} was ${held?.state ?? 'gone'}${held?.worker ? ` on ${held.worker}` : ''} when its worker was held, not active on ${victim.name}: the kill missed`);
    await farm.startWorker(false);
    await sleep(100);
  }
  const done = await farm.waitForShot(id, finished, 120_000, 250);
  const seconds = (performance.now() - t0) / 1000;
  if (done.timedOut) problems.push(`shot still ${done.shot?.state} 120 s after the kills`);
  const frame = await farm.frame(id, K);
  const checks = await farm.check([{ id, frames: FRAMES }]);
  return {
    checks,
    counts: {
      kills: `${victims.length} (${victims.join(', ') || 'none'})`,
      [`frame ${K}`]: `${frame?.state ?? '?'}, attempts ${frame?.attempts ?? '?'}${frame?.worker ? `, on ${frame.worker}` : ''}${frame?.error ? `, ${frame.error.message.slice(0, 80)}` : ''}`,
      'submit→end': `${seconds.toFixed(1)} s`,
    },
    problems,
  };
});
