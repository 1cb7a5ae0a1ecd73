/**
 * deploy/prometheus and deploy/grafana against a running farm: the container farm (API and two
 * CPU workers), Debian's redis_exporter and Prometheus with the shipped rules. After real work
 * (a shot that completes, one whose frame fails, webhook deliveries that arrive and others that
 * keep failing), every expression of the Grafana dashboard, of the alert and recording rules and
 * KEDA's scaling query is evaluated through Prometheus's HTTP API: none errors, and all return
 * data. The farm's own webhook and queue-age metrics show the deliveries and the idle queues.
 * promtool checks and unit-tests the rules.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { freePort, until } from '@celfarm/services';
import { S3ObjectStore } from '@celfarm/storage';
import { authed } from '../harness.ts';
import { ensureHostTools, ensureImages, log, ROOT, run, waitForHttp } from './podman.ts';
import { assertColorizesShot, sampleShot, startContainerFarm, waitShot, type ContainerFarm } from './farm.ts';

const runId = `obs${process.pid}`;
const PREFIX = 'deploy';

interface Panel {
  title?: string;
  type: string;
  targets?: { expr: string }[];
}

/** Grafana's built-in variables, as the dashboard's time range would set them. */
const grafanaVars = (expr: string) => expr.replaceAll('$__rate_interval', '30s').replaceAll('$__range', '15m').replaceAll('$__interval', '5s');

interface PromResult {
  status: string;
  error?: string;
  data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

describe('Prometheus rules and the Grafana dashboard on a running farm', () => {
  let farm: ContainerFarm;
  let dir: string;
  let prometheus: ChildProcess | undefined;
  let exporter: ChildProcess | undefined;
  let receiver: Server | undefined;
  let promUrl: string;
  const query = async (expr: string): Promise<PromResult> => {
    const r = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return (await r.json()) as PromResult;
  };

  before(async () => {
    await ensureHostTools([{ pkg: 'prometheus', path: '/usr/bin/prometheus' }, { pkg: 'prometheus-redis-exporter', path: '/usr/bin/prometheus-redis-exporter' }]);
    await ensureImages();
    // A studio endpoint that accepts every delivery (the containers share the host's network).
    const receiverPort = await freePort();
    receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end());
    });
    await new Promise<void>((r) => receiver!.listen(receiverPort, '127.0.0.1', r));
    farm = await startContainerFarm(runId, 2, {
      REDIS_PREFIX: PREFIX,
      // Deliveries to a closed local port fail and back off, as a broken studio endpoint's do.
      WEBHOOK_ALLOW_HOSTS: `127.0.0.1:9,127.0.0.1:${receiverPort}`,
      WEBHOOK_BACKOFF_MS: '600000',
    });
    dir = await mkdtemp(join(tmpdir(), 'celfarm-obs-'));
    const exporterPort = await freePort();
    exporter = spawn('/usr/bin/prometheus-redis-exporter', ['-redis.addr', farm.redisUrl, '-web.listen-address', `127.0.0.1:${exporterPort}`], { stdio: 'ignore' });
    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    const config = {
      global: { scrape_interval: '2s', evaluation_interval: '2s' },
      rule_files: [join(ROOT, 'deploy/prometheus/rules/*.yml')],
      scrape_configs: [
        { job_name: 'celfarm-api', static_configs: [{ targets: [`127.0.0.1:${farm.apiPort}`] }] },
        { job_name: 'celfarm-worker', static_configs: [{ targets: [...farm.workers.values()].map((w) => `127.0.0.1:${w.metricsPort}`) }] },
        { job_name: 'redis', static_configs: [{ targets: [`127.0.0.1:${exporterPort}`] }] },
      ],
    };
    await writeFile(join(dir, 'prometheus.yml'), JSON.stringify(config, null, 2));
    await run('promtool', ['check', 'config', join(dir, 'prometheus.yml')]);
    prometheus = spawn('/usr/bin/prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: 'ignore' });
    await waitForHttp(`${promUrl}/-/ready`, 60_000);

    // Work for the metrics: a webhook subscription whose deliveries fail and one whose deliveries
    // arrive, a shot that completes, and a shot whose only frame is not an image (a permanent
    // frame failure).
    for (const url of ['http://127.0.0.1:9/hooks', `http://127.0.0.1:${receiverPort}/hooks`]) {
      const sub = await fetch(`${farm.apiUrl}/v1/webhooks`, {
        method: 'POST',
        headers: authed(farm.token, { 'content-type': 'application/json' }),
        body: JSON.stringify({ url, events: ['*'] }),
      });
      assert.equal(sub.status, 201, await sub.text());
    }
    await assertColorizesShot(farm.apiUrl, farm.token);
    const store = new S3ObjectStore({ endpoint: farm.s3Endpoint, region: 'us-east-1', bucket: 'celfarm', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true });
    try {
      const { reference } = await sampleShot(1);
      await store.put('projects/demo/obs/ref.png', reference, 'image/png');
      await store.put('projects/demo/obs/lines/00001.png', new TextEncoder().encode('not an image'), 'image/png');
    } finally {
      store.destroy();
    }
    const bad = await fetch(`${farm.apiUrl}/v1/shots`, {
      method: 'POST',
      headers: authed(farm.token, { 'content-type': 'application/json' }),
      body: JSON.stringify({ project: 'demo', reference: { key: 'projects/demo/obs/ref.png' }, frames: { prefix: 'projects/demo/obs/lines/' }, settings: { mode: 'vanilla', steps: 4, width: 128, height: 128 } }),
    });
    const badBody = await bad.text();
    assert.equal(bad.status, 201, badBody);
    const badId = (JSON.parse(badBody) as { id: string }).id;
    await waitShot(farm.apiUrl, farm.token, badId, (s) => s.state === 'failed' || s.state === 'completed');

    // Every target scraped, and the rules evaluated a few times since the work.
    await until(
      'all scrape targets up',
      async () => {
        const r = await query('up');
        return r.data?.result.length === 4 && r.data.result.every((s) => s.value[1] === '1');
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const scalar = async (expr: string) => Number((await query(expr)).data?.result[0]?.value[1] ?? 0);
    await until('webhook deliveries backing off', async () => (await scalar('max(celfarm_webhook_backlog{stage="retrying"})')) > 0, { timeoutMs: 60_000, intervalMs: 1000 });
    await until('webhook deliveries arrived', async () => (await scalar('sum(celfarm_webhook_delivery_latency_seconds_count)')) > 0, { timeoutMs: 60_000, intervalMs: 1000 });
    // A few scrapes (2 s apart) over the idle farm, then until every recording rule has data and
    // the counts the tests read have their final values (a loaded machine may take longer).
    await new Promise((r) => setTimeout(r, 8000));
    const rulesFile = parse(await readFile(join(ROOT, 'deploy/prometheus/rules/celfarm.rules.yml'), 'utf8')) as { groups: { rules: { record?: string }[] }[] };
    const records = rulesFile.groups.flatMap((g) => g.rules).flatMap((r) => (r.record ? [r.record] : []));
    await until(
      'recording rules evaluated over the finished work',
      async () => {
        for (const record of records) if (!(await query(record)).data?.result.length) return false;
        return (await scalar('celfarm:workers')) === 2 && (await scalar('sum(celfarm_frames_total{outcome="failed", reason="INVALID_IMAGE"})')) === 1;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    log('farm, exporter and Prometheus up; work done');
  });

  after(async () => {
    prometheus?.kill('SIGTERM');
    exporter?.kill('SIGTERM');
    await farm?.set.removeAll();
    if (receiver) await new Promise<void>((r) => receiver!.close(() => r()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('promtool checks and unit-tests the rules', async () => {
    await run('promtool', ['check', 'rules', join(ROOT, 'deploy/prometheus/rules/celfarm.rules.yml')]);
    const r = await run('promtool', ['test', 'rules', 'tests/celfarm.rules.test.yml'], { cwd: join(ROOT, 'deploy/prometheus') });
    assert.match(r.stdout, /SUCCESS/);
    await run('promtool', ['check', 'config', join(ROOT, 'deploy/prometheus/prometheus.yml')], { cwd: join(ROOT, 'deploy/prometheus') });
    await run('promtool', ['check', 'config', join(ROOT, 'deploy/compose/prometheus.yml')]);
  });

  it('evaluates every rule without error on the farm, with data where the farm produced it', async () => {
    const res = await fetch(`${promUrl}/api/v1/rules`);
    const body = (await res.json()) as { data: { groups: { name: string; rules: { name: string; health: string; lastError?: string; type: string }[] }[] } };
    const rules = body.data.groups.flatMap((g) => g.rules);
    assert.ok(rules.length >= 15, `${rules.length} rules loaded`);
    for (const rule of rules) assert.equal(rule.health, 'ok', `${rule.name}: ${rule.lastError}`);
    const file = parse(await readFile(join(ROOT, 'deploy/prometheus/rules/celfarm.rules.yml'), 'utf8')) as { groups: { rules: { record?: string; alert?: string; expr: string }[] }[] };
    const empty: string[] = [];
    for (const rule of file.groups.flatMap((g) => g.rules)) {
      const r = await query(rule.expr);
      assert.equal(r.status, 'success', `${rule.record ?? rule.alert}: ${r.error}`);
      if (rule.record && !r.data?.result.length) empty.push(rule.record);
    }
    // Recording rules with data on this farm (all of them: frames, workers, webhooks ran).
    assert.deepEqual(empty, [], `recording rules without data: ${empty.join(', ')}`);
    const workers = await query('celfarm:workers');
    assert.equal(workers.data?.result[0]?.value[1], '2');
    const failed = await query('sum(celfarm_frames_total{outcome="failed", reason="INVALID_IMAGE"})');
    assert.equal(failed.data?.result[0]?.value[1], '1', 'the corrupt frame counted as an INVALID_IMAGE failure');
  });

  it("serves the farm's own webhook and queue-age metrics: deliveries that arrived and failed, idle queues", async () => {
    const byOutcome = await query('sum by (outcome) (celfarm_webhook_deliveries_total)');
    const outcomes = Object.fromEntries((byOutcome.data?.result ?? []).map((s) => [s.metric.outcome, Number(s.value[1])]));
    assert.ok(outcomes.delivered! > 0 && outcomes.retrying! > 0, `deliveries by outcome: ${JSON.stringify(outcomes)}`);
    assert.equal(outcomes.failed, 0, 'nothing given up yet (a 10-minute backoff), and the series is there at 0');
    const reasons = await query('sum by (reason) (celfarm_webhook_attempt_failures_total) > 0');
    assert.deepEqual((reasons.data?.result ?? []).map((s) => s.metric.reason), ['network'], 'the failed attempts: a closed port');
    // Idle now: every queue of every process reports no waiting job.
    const oldest = await query('celfarm_queue_oldest_waiting_seconds');
    const seen = (oldest.data?.result ?? []).map((s) => `${s.metric.role}:${s.metric.queue}=${s.value[1]}`).sort();
    const idle = (role: string) => ['frames', 'prepare', 'shots'].map((q) => `${role}:${q}=0`);
    assert.deepEqual(seen, [...idle('api'), ...[...farm.workers.keys()].flatMap(() => idle('worker'))].sort());
  });

  it('evaluates every panel query of the Grafana dashboard, with data for the farm-level panels', async () => {
    const dashboard = JSON.parse(await readFile(join(ROOT, 'deploy/grafana/dashboards/celfarm.json'), 'utf8')) as { uid: string; panels: Panel[]; templating: { list: { name: string; type: string }[] } };
    assert.ok(dashboard.templating.list.some((v) => v.name === 'datasource' && v.type === 'datasource'), 'the Prometheus data source is a variable');
    const withoutData: string[] = [];
    let n = 0;
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      assert.ok(panel.targets?.length, `${panel.title} has queries`);
      for (const t of panel.targets) {
        n++;
        const r = await query(grafanaVars(t.expr));
        assert.equal(r.status, 'success', `${panel.title}: ${t.expr}: ${r.error}`);
        if (!r.data?.result.length) withoutData.push(`${panel.title}: ${t.expr}`);
      }
    }
    log(`dashboard: ${n} queries evaluated; without data on this farm: ${withoutData.length ? withoutData.join(' | ') : 'none'}`);
    // Deliveries given up (after ~24 h of retries) too: their series start at 0.
    assert.deepEqual(withoutData, []);
  });

  it("evaluates KEDA's scaling query: the frames backlog, 0 when idle", async () => {
    const scaled = parse(await readFile(join(ROOT, 'deploy/k8s/base/worker-scaledobject.yaml'), 'utf8')) as { spec: { triggers: { type: string; metadata: { query: string } }[] } };
    const trigger = scaled.spec.triggers.find((t) => t.type === 'prometheus')!;
    const r = await query(trigger.metadata.query);
    assert.equal(r.status, 'success', r.error);
    assert.equal(r.data?.result.length, 1, 'one number for KEDA');
    assert.equal(r.data?.result[0]?.value[1], '0', 'no frames left: scale to zero');
  });
});
