/**
 * (d) Storage down for 30 s mid-shot, connections really closed: the farm reaches s3rver through
 * a TCP proxy (tools/services), which closes every open connection (the S3 clients' keep-alive
 * sockets included) and refuses new ones for 30 s. A request through the proxy must fail during the
 * outage (so the outage is real); afterwards the shot must complete as if nothing happened.
 */
import { connect } from 'node:net';
import type { ShotView } from '../harness.ts';
import { farmFor, scenario } from './scenario.ts';

const FRAMES = 40;
const OUTAGE_MS = 30_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const finished = (s: ShotView) => ['completed', 'failed', 'cancelled'].includes(s.state);

/** A TCP connect and an HTTP request through the proxy: 'refused (…)' when both fail. */
async function probe(url: string, port: number): Promise<string> {
  const tcp = await new Promise<string>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
  let http: string;
  try {
    const r = await fetch(`${url}/celfarm?list-type=2`, { signal: AbortSignal.timeout(5000) });
    http = `HTTP ${r.status}`;
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause;
    http = cause?.code ?? (e instanceof Error ? e.message : String(e));
  }
  return tcp === 'connected' || http.startsWith('HTTP') ? `ANSWERED (tcp ${tcp}, ${http})` : `refused (tcp ${tcp}, http ${http})`;
}

scenario({ id: 'd', title: `S3 down ${OUTAGE_MS / 1000} s mid-shot, connections closed (${FRAMES} frames, 2 workers)` }, 240_000, async () => {
  const farm = await farmFor({ name: 'd-s3-outage', workers: 2, s3Proxy: true });
  const proxy = farm.proxy!;
  const t0 = performance.now();
  const id = await farm.submit(FRAMES, { mode: 'vanilla', steps: 12, seed: 3 }, 128);
  const problems: string[] = [];
  const before = await farm.waitForShot(id, (s) => finished(s) || s.counts.completed >= 3, 60_000, 50);
  const completedBefore = before.shot?.counts.completed ?? 0;
  if (before.shot && finished(before.shot)) problems.push(`the shot ended (${before.shot.state}) before the outage`);
  const tCut = performance.now();
  const closed = await proxy.cut();
  const early = await probe(proxy.url, proxy.port);
  let during: ShotView | undefined;
  while (performance.now() - tCut < OUTAGE_MS - 2000) {
    during = (await farm.view(id)) ?? during;
    await sleep(1000);
  }
  const late = await probe(proxy.url, proxy.port);
  await sleep(Math.max(0, OUTAGE_MS - (performance.now() - tCut)));
  await proxy.restore();
  const outage = (performance.now() - tCut) / 1000;
  for (const [when, p] of [['start', early], ['end', late]] as const) {
    if (!p.startsWith('refused')) problems.push(`the outage was not real: a request through the proxy at its ${when} ${p}`);
  }
  if (closed === 0) problems.push('no open connection to close at the cut (the farm held none: the fault did not hit)');
  const failedDuring = during?.counts.failed ?? 0;
  const done = await farm.waitForShot(id, finished, 150_000, 250);
  const seconds = (performance.now() - t0) / 1000;
  if (done.timedOut) problems.push(`shot still ${done.shot?.state} 150 s after the outage`);
  const checks = await farm.check([{ id, frames: FRAMES }]);
  return {
    checks,
    counts: {
      outage: `${outage.toFixed(1)} s after ${completedBefore} frames`,
      'connections closed': closed,
      'probe during outage': early === late || late.startsWith('refused') ? early : `${early}; at the end ${late}`,
      'at outage end': `shot ${during?.state ?? '?'}, ${failedDuring} frames failed`,
      'submit→end': `${seconds.toFixed(1)} s`,
    },
    problems,
  };
});
