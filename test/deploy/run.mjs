#!/usr/bin/env node
// The deploy suite (`npm run test:deploy`): container images, Compose, Prometheus rules and the
// Grafana dashboard against a running farm, Kubernetes manifests — all run for real with podman.
// Slow (image builds), so it is not part of `npm test`. Bounded: each suite file gets
// --test-timeout, the whole run DEPLOY_TEST_DEADLINE_S seconds (default 1500), after which it is
// stopped and every container it labelled is removed.
//
// Usage: node test/deploy/run.mjs [suite ...]     suites: images compose observability k8s
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { clearTimeout, setTimeout } from 'node:timers';
import { ensureDeps } from '../../scripts/ensure-deps.mjs';

const root = new URL('../..', import.meta.url).pathname;
const dir = join(root, 'test/deploy');
const order = ['images', 'compose', 'observability', 'k8s'];
const available = readdirSync(dir).filter((f) => f.endsWith('.deploy.ts')).map((f) => f.replace(/\.deploy\.ts$/, ''));
const wanted = process.argv.slice(2);
for (const w of wanted) if (!available.includes(w)) throw new Error(`no suite ${w} (have: ${available.join(', ')})`);
const suites = (wanted.length ? wanted : available).sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99));
const deadlineS = Number(process.env.DEPLOY_TEST_DEADLINE_S ?? 1500);
const env = { ...process.env, CONTAINERS_CONF: join(dir, 'containers.conf') };

ensureDeps(root);
const cleanup = () => {
  for (const kind of [['ps', '-aq'], ['pod', 'ps', '-q'], ['volume', 'ls', '-q']]) {
    const ids = spawnSync('podman', [...kind, '--filter', 'label=celfarm-deploy-test'], { env, encoding: 'utf8' }).stdout?.split('\n').filter(Boolean) ?? [];
    if (!ids.length) continue;
    const rm = kind[0] === 'ps' ? ['rm', '-f', '-v', '-t', '0'] : kind[0] === 'pod' ? ['pod', 'rm', '-f'] : ['volume', 'rm', '-f'];
    spawnSync('podman', [...rm, ...ids], { env, stdio: 'ignore' });
  }
  // Networks and volumes the compose suite's projects (cfd<pid>) created.
  for (const kind of ['network', 'volume']) {
    const names = spawnSync('podman', [kind, 'ls', '--format', '{{.Name}}'], { env, encoding: 'utf8' }).stdout?.split('\n') ?? [];
    const ours = names.filter((n) => /^cfd\d+_[a-z0-9-]+$/.test(n));
    if (ours.length) spawnSync('podman', [kind, 'rm', '-f', ...ours], { env, stdio: 'ignore' });
  }
};
// What an interrupted earlier run left behind.
cleanup();

const t0 = Date.now();
const files = suites.map((s) => join('test/deploy', `${s}.deploy.ts`));
console.log(`deploy suite: ${suites.join(', ')} (deadline ${deadlineS} s)`);
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', `--test-timeout=${deadlineS * 1000}`, ...files], {
  cwd: root,
  env,
  stdio: 'inherit',
});
const timer = setTimeout(() => {
  console.error(`deploy suite: past its deadline of ${deadlineS} s, stopping it`);
  child.kill('SIGKILL');
}, deadlineS * 1000);
child.on('exit', (code, signal) => {
  clearTimeout(timer);
  // Containers of a run that died before its own clean-up.
  if (signal || code !== 0) cleanup();
  console.log(`deploy suite: ${code === 0 ? 'passed' : `failed (${signal ?? code})`} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  process.exit(code ?? 1);
});
