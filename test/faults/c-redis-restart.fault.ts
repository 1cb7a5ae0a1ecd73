/**
 * (c) Redis SIGKILL and restart (AOF on, appendfsync always) right after 20 acknowledged
 * submits, while their frames render: no acknowledged shot is lost, and every one completes.
 */
import { until } from '@celfarm/services';
import type { ShotView } from '../harness.ts';
import { farmFor, scenario } from './scenario.ts';

const SHOTS = 20;
const FRAMES = 3;
const DOWN_MS = 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const finished = (s: ShotView) => ['completed', 'failed', 'cancelled'].includes(s.state);

scenario({ id: 'c', title: `Redis SIGKILL + restart after ${SHOTS} acknowledged submits` }, 180_000, async () => {
  const farm = await farmFor({ name: 'c-redis-restart', workers: 2 });
  const t0 = performance.now();
  const ids: string[] = [];
  for (let i = 0; i < SHOTS; i++) ids.push(await farm.submit(FRAMES, { mode: 'vanilla', steps: 4, seed: 100 + i }));
  // SIGKILL the moment the last submit was acknowledged: no shutdown, no final fsync.
  await farm.killRedis();
  await sleep(DOWN_MS);
  await farm.restartRedis();
  const problems: string[] = [];
  // Every acknowledged shot is known again, once the API is back on Redis.
  const listed = await farm.waitForShot(ids[0]!, () => true, 30_000);
  if (listed.timedOut) problems.push('the API did not answer within 30 s of the restart');
  // Listed once the list answers (a 503 or a refused connection just after the restart is retried).
  const list = await until(
    'GET /v1/shots answering after the restart',
    async () => {
      const r = await farm.call<{ shots: { id: string }[] }>('GET', '/v1/shots?project=faults&limit=100');
      return r.status === 200 ? r : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 250, retryErrors: true },
  ).catch(() => undefined);
  if (!list) problems.push('GET /v1/shots did not answer 200 within 30 s of the restart');
  const found = ids.filter((id) => list?.body?.shots?.some((s) => s.id === id)).length;
  if (found !== SHOTS) problems.push(`${SHOTS - found} of ${SHOTS} acknowledged shots missing from GET /v1/shots after the restart`);
  for (const id of ids) {
    const done = await farm.waitForShot(id, finished, Math.max(1000, 120_000 - (performance.now() - t0)), 250);
    if (done.timedOut) problems.push(`shot ${id} still ${done.shot?.state ?? 'unknown'} after 120 s`);
  }
  const seconds = (performance.now() - t0) / 1000;
  // An event whose outbox read was lost with the connection is read again once the dispatcher
  // is back on Redis; one whose fan-out was cut goes out within seconds: allow a minute.
  const checks = await farm.check(ids.map((id) => ({ id, frames: FRAMES })), { webhookWaitMs: 60_000 });
  return {
    checks,
    counts: { 'acknowledged submits': SHOTS, 'redis SIGKILLs': 1, 'found after restart': `${found}/${SHOTS}`, 'submit→end': `${seconds.toFixed(1)} s` },
    problems,
  };
});
