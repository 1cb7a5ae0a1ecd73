/**
 * deploy/k8s: `kubectl kustomize` renders every overlay; every object validates against the
 * Kubernetes and KEDA schemas (kubernetes-models, @kubernetes-models/keda); the settings an
 * operator relies on hold (GPU requests, grace periods longer than a frame's lock, probes,
 * resources, PodDisruptionBudgets, scale to zero with a bounded maximum, no Secret in git); and
 * the rendered Deployments of the CPU overlay run under `podman kube play` (two worker pods, one
 * API pod, Redis and S3 outside as in production) and serve a shot.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments, stringify } from 'yaml';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { freePort, until } from '@celfarm/services';
import { authed } from '../harness.ts';
import { ContainerSet, ensureHostTools, ensureImages, IMAGES, log, podman, ROOT, run, waitForHttp } from './podman.ts';
import { assertColorizesShot, publishAnalyticPack } from './farm.ts';

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

/** Schema classes by apiVersion/kind; an object of any other kind fails the suite. */
const MODELS: Record<string, new (o: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/Ingress': Ingress,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
};

const K8S = join(ROOT, 'deploy/k8s');

/**
 * kubectl with a kustomize that knows components (kubectl 1.21+). Debian ships none that new
 * (kubernetes-client is 1.20); CI machines have one in their image. Without it the suite is
 * skipped, saying why.
 */
function kubectlMissing(): string | undefined {
  const r = spawnSync('kubectl', ['version', '--client', '-o', 'json'], { encoding: 'utf8' });
  if (r.status !== 0) return 'kubectl not found (Debian has only kubernetes-client 1.20; kubectl 1.21+ renders the overlays)';
  const minor = Number((JSON.parse(r.stdout) as { clientVersion?: { minor?: string } }).clientVersion?.minor?.replace(/\D.*$/, ''));
  return minor >= 21 ? undefined : `kubectl 1.${minor} is too old to render Kustomize components (1.21+)`;
}
const skip = kubectlMissing();

async function render(dir: string): Promise<K8sObject[]> {
  const { stdout } = await run('kubectl', ['kustomize', dir]);
  return parseAllDocuments(stdout).map((d) => d.toJS() as K8sObject).filter(Boolean);
}

function validate(objects: K8sObject[], where: string): void {
  for (const o of objects) {
    const Model = MODELS[`${o.apiVersion}/${o.kind}`];
    assert.ok(Model, `${where}: no schema for ${o.apiVersion} ${o.kind} (${o.metadata.name})`);
    try {
      new Model(o as never).validate();
    } catch (e) {
      assert.fail(`${where}: ${o.kind}/${o.metadata.name} does not validate: ${(e as Error).message}`);
    }
  }
}

const find = (objects: K8sObject[], kind: string, name: string) => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind}/${name} rendered`);
  return o;
};

interface Container {
  name: string;
  image: string;
  env?: { name: string; value?: string }[];
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  startupProbe?: unknown;
  livenessProbe?: unknown;
  readinessProbe?: unknown;
  securityContext?: { allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean };
}
interface PodSpec {
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean };
  containers: Container[];
}
const podSpec = (d: K8sObject) => (d.spec as { template: { spec: PodSpec } }).template.spec;

/** A copy of a Deployment without containerPorts, its probes' named ports replaced by numbers. */
function withoutPorts(d: K8sObject): K8sObject {
  const copy = structuredClone(d);
  for (const c of podSpec(copy).containers as (Container & { ports?: { name?: string; containerPort: number }[] } & Record<string, unknown>)[]) {
    const byName = new Map((c.ports ?? []).map((p) => [p.name, p.containerPort]));
    delete c.ports;
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      const get = (c[probe] as { httpGet?: { port: string | number } } | undefined)?.httpGet;
      if (get && typeof get.port === 'string') get.port = byName.get(get.port) ?? get.port;
    }
  }
  return copy;
}

describe('deploy/k8s', { skip }, () => {
  const rendered: Record<string, K8sObject[]> = {};

  before(async () => {
    for (const overlay of ['cpu', 'gpu']) rendered[overlay] = await render(join(K8S, 'overlays', overlay));
  });

  it('renders every overlay and component into objects that validate against the Kubernetes and KEDA schemas', async () => {
    for (const [name, objects] of Object.entries(rendered)) {
      assert.deepEqual(
        objects.map((o) => `${o.kind}/${o.metadata.name}`).filter((k) => !k.startsWith('ConfigMap/')).sort(),
        ['Deployment/celfarm-api', 'Deployment/celfarm-worker', 'Namespace/celfarm', 'PodDisruptionBudget/celfarm-api', 'PodDisruptionBudget/celfarm-worker', 'ScaledObject/celfarm-worker', 'Service/celfarm-api'],
        name,
      );
      validate(objects, `overlays/${name}`);
      for (const o of objects) if (o.kind !== 'Namespace') assert.equal(o.metadata.namespace, 'celfarm', `${o.kind}/${o.metadata.name} namespace`);
    }
    // The components, added to an overlay as an operator would.
    const dir = await mkdtemp(join(ROOT, '.cache/deploy/k8s-components-'));
    try {
      const rel = (p: string) => relative(dir, join(K8S, p));
      await writeFile(join(dir, 'kustomization.yaml'), stringify({ resources: [rel('overlays/gpu')], components: [rel('components/ingress'), rel('components/dev-secrets')] }));
      const objects = await render(dir);
      validate(objects, 'gpu + ingress + dev-secrets');
      const ingress = find(objects, 'Ingress', 'celfarm-api') as K8sObject & { spec: { rules: { http: { paths: { backend: { service: { name: string } } }[] } }[] } };
      assert.equal(ingress.spec.rules[0]!.http.paths[0]!.backend.service.name, 'celfarm-api');
      assert.ok(find(objects, 'Secret', 'celfarm-secrets').data?.REDIS_URL);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('asks for what a farm needs: GPUs, drains longer than a frame, probes, limits, non-root, no secrets in git', () => {
    for (const [name, objects] of Object.entries(rendered)) {
      assert.ok(!objects.some((o) => o.kind === 'Secret'), `${name}: credentials are not rendered from git`);
      const config = find(objects, 'ConfigMap', objects.find((o) => o.kind === 'ConfigMap')!.metadata.name);
      const lockSeconds = Number(config.data?.LOCK_DURATION_MS) / 1000;
      for (const d of objects.filter((o) => o.kind === 'Deployment')) {
        const spec = podSpec(d);
        assert.equal(spec.securityContext?.runAsNonRoot, true, `${name} ${d.metadata.name}: non-root`);
        for (const c of spec.containers) {
          assert.ok(c.resources?.requests && c.resources.limits?.memory, `${name} ${d.metadata.name}/${c.name}: requests and a memory limit`);
          assert.ok(c.livenessProbe && c.startupProbe, `${name} ${d.metadata.name}/${c.name}: probes`);
          assert.equal(c.securityContext?.allowPrivilegeEscalation, false);
          assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
        }
      }
      const api = podSpec(find(objects, 'Deployment', 'celfarm-api')).containers[0]!;
      assert.ok(api.readinessProbe, 'the API has a readiness probe (/readyz)');
      const worker = podSpec(find(objects, 'Deployment', 'celfarm-worker'));
      assert.ok((worker.terminationGracePeriodSeconds ?? 30) >= Math.max(600, 2 * lockSeconds), `${name}: worker grace ${worker.terminationGracePeriodSeconds} s, lock ${lockSeconds} s`);
      const providers = worker.containers[0]!.env?.find((e) => e.name === 'WORKER_PROVIDERS')?.value;
      const scaled = find(objects, 'ScaledObject', 'celfarm-worker').spec as { minReplicaCount: number; maxReplicaCount: number; scaleTargetRef: { name: string }; triggers: { type: string; metadata: { query: string } }[] };
      assert.equal(scaled.scaleTargetRef.name, 'celfarm-worker');
      assert.equal(scaled.minReplicaCount, 0, 'scales to zero when idle');
      assert.ok(scaled.maxReplicaCount >= 1 && scaled.maxReplicaCount <= 64, `max ${scaled.maxReplicaCount}`);
      assert.match(scaled.triggers[0]!.metadata.query, /state=~"waiting\|prioritized\|active\|delayed"/, 'prioritized jobs count');
      if (name === 'gpu') {
        assert.equal(providers, 'cuda:0,cpu');
        assert.equal(String(worker.containers[0]!.resources?.limits?.['nvidia.com/gpu']), '1', 'one GPU per worker pod');
        assert.match(worker.containers[0]!.image, /worker-cuda/);
      } else {
        assert.equal(providers, 'cpu');
        assert.match(worker.containers[0]!.image, /worker-cpu/);
      }
    }
  });

  describe('under podman kube play', () => {
    const set = new ContainerSet(`k8s${process.pid}`);
    let dir: string;
    let playFile: string;
    before(async () => {
      await ensureHostTools(['catatonit']);
      await ensureImages();
      // Redis and S3 outside the "cluster" (as in production), reachable from the pods through
      // the podman bridge's gateway.
      const gateway = JSON.parse((await podman(['network', 'inspect', 'podman'])).stdout)[0].subnets?.[0]?.gateway as string;
      assert.ok(gateway, 'podman bridge gateway');
      const [redisPort, s3Port] = [await freePort(), await freePort()];
      await set.start('redis', { image: IMAGES.redis, args: ['redis-server', '--port', String(redisPort), '--bind', '0.0.0.0', '--protected-mode', 'no', '--appendonly', 'yes', '--maxmemory-policy', 'noeviction', '--save', ''] });
      await set.start('s3', { image: IMAGES.s3, args: ['--port', String(s3Port), '--configure-bucket', 'celfarm', '--silent'] });
      await waitForHttp(`http://127.0.0.1:${s3Port}/celfarm`, 60_000);
      await publishAnalyticPack(`http://127.0.0.1:${s3Port}`);

      // A test overlay on overlays/cpu, as a studio's own overlay would be: local images, the
      // addresses of Redis and S3, small resources for this 2-core machine.
      dir = await mkdtemp(join(ROOT, '.cache/deploy/k8s-play-'));
      const rel = (p: string) => relative(dir, join(K8S, p));
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'worker.yaml'), stringify({
        apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'celfarm-worker' },
        spec: { replicas: 2, template: { spec: { containers: [{ name: 'worker', env: [{ name: 'WORKER_THREADS', value: '1' }, { name: 'HEARTBEAT_MS', value: '1000' }], resources: { requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: '1', memory: '2Gi' } } }] } } },
      }));
      await writeFile(join(dir, 'api.yaml'), stringify({
        apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'celfarm-api' },
        spec: { replicas: 1, template: { spec: { containers: [{ name: 'api', resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '1', memory: '1Gi' } } }] } } },
      }));
      await writeFile(join(dir, 'kustomization.yaml'), stringify({
        resources: [rel('overlays/cpu')],
        images: [
          { name: 'celfarm/api', newName: IMAGES.api.split(':')[0], newTag: IMAGES.api.split(':')[1] },
          { name: 'celfarm/worker-cpu', newName: IMAGES.workerCpu.split(':')[0], newTag: IMAGES.workerCpu.split(':')[1] },
        ],
        configMapGenerator: [{ name: 'celfarm-config', behavior: 'merge', literals: [`S3_ENDPOINT=http://${gateway}:${s3Port}`, 'PACK_S3_PREFIX=packs/analytic', 'REDIS_PREFIX=k8s', 'S3_PRESIGN=never'] }],
        // The Secret an operator creates outside git (the base only refers to it).
        secretGenerator: [{ name: 'celfarm-secrets', literals: [`REDIS_URL=redis://${gateway}:${redisPort}`, 'S3_ACCESS_KEY_ID=S3RVER', 'S3_SECRET_ACCESS_KEY=S3RVER'], options: { disableNameSuffixHash: true } }],
        patches: [{ path: 'worker.yaml' }, { path: 'api.yaml' }],
      }));
      const objects = await render(dir);
      validate(objects, 'test overlay');
      // podman kube play runs Deployments and ConfigMaps; it reads a Secret referenced by
      // secretRef from a podman secret of that name (JSON: key → base64 value).
      const secret = find(objects, 'Secret', 'celfarm-secrets');
      await podman(['secret', 'rm', 'celfarm-secrets'], { allowFail: true });
      await writeFile(join(dir, 'secret.json'), JSON.stringify(secret.data), { mode: 0o600 });
      await podman(['secret', 'create', 'celfarm-secrets', join(dir, 'secret.json')]);
      // podman 4.3 also publishes every containerPort on the host, so two worker pods would
      // collide on 9464: the play stream drops the port lists (named probe ports made numeric);
      // pods are reached at their own addresses.
      const playable = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'ConfigMap').map((o) => (o.kind === 'Deployment' ? withoutPorts(o) : o));
      playFile = join(dir, 'play.yaml');
      await writeFile(playFile, playable.map((o) => stringify(o)).join('---\n'));
      const t0 = Date.now();
      await podman(['kube', 'play', playFile], { timeoutMs: 300_000 });
      log(`kube play: ${playable.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    });

    after(async () => {
      if (playFile) await podman(['kube', 'down', playFile], { allowFail: true, timeoutMs: 120_000 });
      await podman(['secret', 'rm', 'celfarm-secrets'], { allowFail: true });
      await set.removeAll();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('runs the rendered Deployments (API and two workers as pods) and serves a shot', async () => {
      const pods = (await podman(['pod', 'ps', '--format', '{{.Name}}'])).stdout.split('\n').filter((n) => n.startsWith('celfarm-'));
      assert.deepEqual(pods.sort(), ['celfarm-api-pod-0', 'celfarm-worker-pod-0', 'celfarm-worker-pod-1']);
      // The pod's address is its infra container's, on the podman bridge.
      const infra = (await podman(['pod', 'inspect', '--format', '{{.InfraContainerID}}', 'celfarm-api-pod-0'])).stdout.trim();
      const apiIp = (await podman(['inspect', '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', infra])).stdout.trim();
      assert.ok(apiIp, 'the API pod has an address');
      const apiUrl = `http://${apiIp}:8080`;
      await waitForHttp(`${apiUrl}/readyz`, 180_000, async () => (await podman(['logs', '--tail', '30', 'celfarm-api-pod-0-api'], { allowFail: true })).stderr);
      const user = (await podman(['exec', 'celfarm-api-pod-0-api', 'id', '-u'])).stdout.trim();
      assert.equal(user, '1000');
      const token = (await podman(['exec', 'celfarm-api-pod-0-api', 'node', 'apps/api/dist/server/admin.mjs', 'keys', 'create', '--project', 'demo', '--name', 'k8s', '--scopes', 'submit,read,admin'])).stdout.trim();
      // Worker ids are the pod names (downward API), as on a cluster.
      await until(
        'both worker pods registered',
        async () => {
          const r = await fetch(`${apiUrl}/v1/workers`, { headers: authed(token) });
          const ids = ((await r.json()) as { workers: { id: string }[] }).workers.map((w) => w.id).sort();
          return ids.length === 2 && ids.every((id) => id.startsWith('celfarm-worker-pod-')) ? ids : undefined;
        },
        { timeoutMs: 180_000, intervalMs: 1000, retryErrors: true },
      );
      const { frames } = await assertColorizesShot(apiUrl, token);
      log(`kube play: 4-frame shot completed on ${[...new Set(frames.map((f) => f.worker))].join(', ')}`);
    });
  });
});
