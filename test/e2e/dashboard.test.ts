/**
 * The producers' dashboard in a real browser (Debian's chromium, driven by playwright-core)
 * against the real farm: sign in with a key, watch a 4-frame shot render live over server-sent
 * events without reloading — sampler steps, the progress bar reaching 100 %, four colour
 * thumbnails — then the workers and queues pages, and sign out. Screenshots go to out/screenshots.
 */
import assert from 'node:assert/strict';
import { until as waitUntil } from '@celfarm/services';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { encodePng } from '@celfarm/pipeline/image/codec';
import { Redis } from 'ioredis';
import { ShotStore } from '@celfarm/jobs';
import { S3ObjectStore } from '@celfarm/storage';
import { ROOT, authed, createApiKey, shotForm, shotFrames, startFarm, waitForShot, type Farm, type ShotView } from '../harness.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS_DIR = join(ROOT, 'out', 'screenshots');
const SIZE = 384;

/** Polls `check` until it returns a value that is not undefined/false, or fails after `ms`. */

/** Waits on the page: a probe that throws mid-navigation is retried, polled every 100 ms. */
const until = <T>(what: string, check: () => Promise<T | undefined | false>, ms = 30_000) =>
  waitUntil(what, check, { timeoutMs: ms, intervalMs: 100, retryErrors: true });

/** Counts decoded colour thumbnails in the frame strip (a string: no DOM types in this program). */
const LOADED_COLOUR_THUMBS =
  "[...document.querySelectorAll('img[data-kind=colour]')].filter((i) => i.complete && i.naturalWidth > 0).length";

describe('dashboard in a browser', () => {
  let farm: Farm;
  let browser: Browser;
  let token: string;

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: install Debian's chromium (\`sudo apt-get install -y chromium\`; npm test does it as root) or set CHROMIUM_PATH`);
    if (!existsSync(join(ROOT, 'apps/dashboard/dist/index.html'))) {
      const built = spawnSync('npm', ['run', 'build', '-w', '@celfarm/dashboard'], { cwd: ROOT, stdio: 'inherit' });
      assert.equal(built.status, 0, 'building the dashboard failed');
    }
    await mkdir(SHOTS_DIR, { recursive: true });
    [farm, browser] = await Promise.all([
      startFarm({ workers: 1 }),
      chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] }),
    ]);
    token = await createApiKey(farm, 'demo', ['submit', 'read', 'admin'], 'dashboard e2e');
  });
  after(async () => {
    farm?.workers[0]?.child.kill('SIGCONT'); // a test that failed while holding the worker
    await browser?.close();
    await farm?.stop();
  });

  it('streams live events and shot snapshots to a key (GET /v1/live)', async () => {
    const refused = await fetch(`${farm.apiUrl}/v1/live`);
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
    const ac = new AbortController();
    const r = await fetch(`${farm.apiUrl}/v1/live`, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = r.body!.getReader();
    let text = '';
    const end = Date.now() + 5000;
    while (!/event: shots\ndata: \{"at":"[^"]+","shots":\[/.test(text) && Date.now() < end) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString('utf8');
    }
    ac.abort();
    assert.match(text, /event: shots\ndata: \{"at":"[^"]+","shots":\[/);
  });

  it('signs in, renders a shot live without reloading, lists the worker, signs out', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page: Page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/401|Unauthorized/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    let loads = 0;
    page.on('load', () => loads++);

    // Sign in: a wrong key is refused with a message, the right one opens the shots table.
    await page.goto(`${farm.apiUrl}/`);
    await page.getByLabel('API key').fill('cf_not-a-key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'not accepted' }).waitFor();
    await page.screenshot({ path: join(SHOTS_DIR, 'dashboard-signin.png') });
    await page.getByLabel('API key').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Shots', level: 1 }).waitFor();
    await page.getByText('No shots yet.').waitFor();
    await page.locator('.live-live').waitFor();
    const loadsAfterSignIn = loads;

    // Submit through the API, as a studio's pipeline would; the table shows it without a reload.
    // The worker is held (SIGSTOP) until the shot's page is open: the analytic pack renders the
    // whole shot in well under a second, which a loaded machine can spend opening the page.
    const workerProcess = farm.workers[0]!.child;
    workerProcess.kill('SIGSTOP');
    let held = true;
    const release = () => {
      if (held) workerProcess.kill('SIGCONT');
      held = false;
    };
    const frames = 4;
    const sketches = await Promise.all(Array.from({ length: frames }, (_, i) => encodePng(sketchFrame(SIZE, SIZE, i, frames).image)));
    const reference = await encodePng(halfImage(SIZE, SIZE, COLOURS.red, COLOURS.grey));
    const res = await fetch(`${farm.apiUrl}/v1/shots`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: shotForm({ project: 'demo', settings: { mode: 'background', steps: 32, guidanceScale: 1, seed: 3, width: SIZE, height: SIZE } }, { reference, frames: sketches }),
    });
    const submitted = (await res.json()) as ShotView;
    assert.equal(res.status, 201, JSON.stringify(submitted));
    const row = page.locator(`tr[data-shot="${submitted.id}"]`);
    await row.waitFor({ timeout: 10_000 });

    // Its page: sampler steps move, the bar reaches 100 %, four colour thumbnails appear.
    await row.getByRole('link', { name: submitted.id }).click();
    await page.getByRole('heading', { name: submitted.id, level: 1 }).waitFor();
    const bar = page.getByRole('progressbar', { name: `Progress of shot ${submitted.id}` });
    const steps = new Set<string>();
    const percents = new Set<string>();
    // The page learns sampler steps from the live snapshot (once a second) and a frame samples in
    // less: the worker runs until the API reports a frame mid-sampling, is held there until the
    // page shows that frame's step, then runs on to the end.
    const sampling = async () => {
      const r = await fetch(`${farm.apiUrl}/v1/shots/${submitted.id}`, { headers: authed(token) });
      const v = (await r.json()) as ShotView;
      return v.active.find((f) => f.step !== undefined && f.steps !== undefined && f.step >= 1 && f.step < f.steps);
    };
    for (let attempt = 0; steps.size === 0; attempt++) {
      assert.ok(attempt < 5, 'a frame held mid-sampling was shown with its step');
      release();
      await waitUntil('a frame mid-sampling', sampling, { timeoutMs: 30_000, intervalMs: 5 });
      workerProcess.kill('SIGSTOP');
      held = true;
      if (!(await sampling())) continue; // it finished its sampling before the hold: next frame
      const shown = await until('the held frame’s step on the page', async () => {
        const texts = await page.locator('.frame-active .frame-facts dd.mono').allTextContents();
        return texts.find((t) => /^\d+\/\d+$/.test(t));
      }, 10_000);
      steps.add(shown);
      await page.screenshot({ path: join(SHOTS_DIR, 'dashboard-shot-rendering.png'), fullPage: true });
    }
    release();
    await until('the progress bar at 100 %', async () => {
      for (const t of await page.locator('.frame-active .frame-facts dd.mono').allTextContents()) if (/^\d+\/\d+$/.test(t)) steps.add(t);
      const now = await bar.getAttribute('aria-valuenow');
      if (now) percents.add(now);
      return now === '100';
    }, 45_000);
    await until('four colour thumbnails', async () => (await page.evaluate<number>(LOADED_COLOUR_THUMBS)) === 4, 15_000);
    await page.locator('.shot-head .badge-completed').waitFor();
    assert.ok(steps.size > 0, 'a sampler step (n/m) of an active frame was shown');
    // The page was open before the bar reached 100 % (it moved live, not by a reload).
    assert.ok([...percents].some((p) => Number(p) < 100), `progress seen: ${[...percents].join(', ')}`);
    assert.equal(await page.locator('img[data-kind=sketch]').count(), 4, 'each frame shows its sketch');
    assert.equal(await page.getByRole('button', { name: 'Cancel shot' }).isDisabled(), true, 'a completed shot cannot be cancelled');
    assert.equal(await page.getByRole('button', { name: /Retry failed/ }).isDisabled(), true, 'nothing failed, nothing to retry');

    // The flipbook: space plays, → steps.
    await page.locator('.flipbook').focus();
    await page.keyboard.press('ArrowRight');
    await page.locator('.flipbook-counter', { hasText: 'Frame 2' }).waitFor();
    await page.keyboard.press('Space');
    await page.getByRole('button', { name: 'Pause' }).waitFor();
    await page.keyboard.press('Space');
    await page.getByRole('button', { name: 'Play' }).waitFor();

    await page.screenshot({ path: join(SHOTS_DIR, 'dashboard-shot.png'), fullPage: true });
    await page.setViewportSize({ width: 768, height: 1024 });
    await page.screenshot({ path: join(SHOTS_DIR, 'dashboard-shot-768.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
    assert.equal(loads, loadsAfterSignIn, 'no reload happened since signing in');

    // Shots table, workers, queues.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Shots' }).click();
    await row.locator('.badge-completed').waitFor();
    await page.screenshot({ path: join(SHOTS_DIR, 'dashboard-shots.png'), fullPage: true });
    await page.setViewportSize({ width: 768, height: 1024 });
    await page.screenshot({ path: join(SHOTS_DIR, 'dashboard-shots-768.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Workers' }).click();
    const worker = page.locator('tr[data-worker="worker-1"]');
    await worker.waitFor();
    assert.match(await worker.innerText(), /(just now|\d+ s ago)/);
    // Its frame count comes with a heartbeat and the page's refresh: waited for, not read once.
    await until('the worker counts its four frames', async () => (await worker.locator('td.num').first().innerText()).trim() === '4', 10_000);
    await page.screenshot({ path: join(SHOTS_DIR, 'dashboard-workers.png'), fullPage: true });
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Queues' }).click();
    await page.locator('tr[data-queue="frames"]').waitFor();
    await page.screenshot({ path: join(SHOTS_DIR, 'dashboard-queues.png'), fullPage: true });
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Webhooks' }).click();
    await page.getByText('No webhooks in this project yet.').waitFor();
    await page.screenshot({ path: join(SHOTS_DIR, 'dashboard-webhooks.png'), fullPage: true });

    // Sign out: back to the sign-in form, and the cookie no longer opens the API.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').waitFor();
    assert.equal(await page.evaluate<number>("fetch('/v1/session').then((r) => r.status)"), 401);
    await page.reload();
    await page.getByLabel('API key').waitFor();

    assert.deepEqual(problems, []);
    await context.close();
  });

  it('colours a failed shot as failed and offers a retry only for the frames a retry can fix', async () => {
    const objects = new S3ObjectStore({ endpoint: farm.s3.endpoint, region: 'us-east-1', bucket: 'celfarm', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true });
    const redis = new Redis(farm.redis.url);
    const store = new ShotStore(redis, farm.env.REDIS_PREFIX);
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const small = 64;
      const settings = { mode: 'vanilla', steps: 4, width: small, height: small };
      const reference = await encodePng(halfImage(small, small, COLOURS.red, COLOURS.grey));
      const sketches = await Promise.all([0, 1].map((i) => encodePng(sketchFrame(small, small, i, 2).image)));
      const notAnImage = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4]);
      const submit = async (body: unknown) => {
        const r = await fetch(`${farm.apiUrl}/v1/shots`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
        assert.equal(r.status, 201, await r.clone().text());
        return (await r.json()) as ShotView & { uploads?: { field: string; key: string }[] };
      };
      const retry = (id: string) => fetch(`${farm.apiUrl}/v1/shots/${id}/retry`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });

      // Frame 2 of this shot is not an image: the worker fails it for good, and the shot with it.
      const lib = 'projects/demo/library/broken';
      await objects.put(`${lib}/reference.png`, reference, 'image/png');
      await objects.put(`${lib}/0001.png`, sketches[0]!, 'image/png');
      await objects.put(`${lib}/0002.png`, notAnImage, 'image/png');
      const broken = await submit({ settings, reference: { key: `${lib}/reference.png` }, frames: { keys: [`${lib}/0001.png`, `${lib}/0002.png`] } });
      const failed = await waitForShot(farm.apiUrl, broken.id, (s) => s.state === 'failed' || s.state === 'completed', 60_000, token);
      assert.equal(failed.state, 'failed', JSON.stringify(failed.error));
      // The API refuses a retry that would fail the same way, and says why.
      const refused = await retry(broken.id);
      const why = (await refused.json()) as { error: { code: string; message: string } };
      assert.equal(refused.status, 409);
      assert.equal(why.error.code, 'NOT_RETRYABLE');
      assert.match(why.error.message, /frame 2 INVALID_IMAGE \(frames\[1\]\)/);

      // A frame failed on bad input beside one whose worker was lost (records as the farm leaves
      // them; the inputs uploaded, no job queued): only the second is worth a retry.
      const mixed = await submit({ settings, reference: { upload: true }, frames: { upload: 2 } });
      const inputs = [reference, ...sketches];
      for (const [i, u] of mixed.uploads!.entries()) await objects.put(u.key, inputs[i]!, 'image/png');
      await store.update(mixed.id, { state: 'running', awaitingUploads: false });
      for (const frame of [1, 2]) await store.setFrame(mixed.id, frame, { state: 'active', attempts: 1, worker: 'worker-gone' });
      await store.setFrame(mixed.id, 1, { state: 'failed', error: { code: 'INVALID_IMAGE', field: 'frames[0]', message: 'frames[0]: not an image', permanent: true } });
      await store.setFrame(mixed.id, 2, { state: 'failed', error: { code: 'WORKER_LOST', message: 'the frame lost its worker' } });
      await store.update(mixed.id, { state: 'failed', error: { code: 'FRAMES_FAILED', message: '2 of 2 frames failed' } });

      const page = await context.newPage();
      await page.goto(`${farm.apiUrl}/`);
      await page.getByLabel('API key').fill(token);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Shots', level: 1 }).waitFor();
      // The bar's paint, as `<colour> <image>` (a string: no DOM types in this program).
      const fill = (scope: string) =>
        page.evaluate<string>(`(() => {
          const s = getComputedStyle(document.querySelector(${JSON.stringify(`${scope} .progress-fill`)}));
          return s.backgroundColor + ' ' + s.backgroundImage;
        })()`);
      const RED = 'rgb(185, 28, 28) none'; // --danger, no gradient

      // In the list, both failed shots' bars are red.
      await page.locator(`tr[data-shot="${broken.id}"] .badge-failed`).waitFor();
      assert.equal(await fill(`tr[data-shot="${broken.id}"]`), RED);
      assert.equal(await fill(`tr[data-shot="${mixed.id}"]`), RED);

      // The broken shot: half done, the bar red, no retry offered, and the frame says why.
      // Shots are listed and titled by name: this one is named after its frames' folder.
      assert.equal(broken.name, 'broken');
      await page.locator(`tr[data-shot="${broken.id}"]`).getByRole('link', { name: broken.name }).click();
      await page.getByRole('heading', { name: broken.name, level: 1 }).waitFor();
      assert.equal(await page.getByRole('progressbar', { name: `Progress of shot ${broken.id}` }).getAttribute('aria-valuenow'), '50');
      assert.equal(await fill('.shot-head'), RED);
      const retryButton = page.getByRole('button', { name: /^Retry failed/ });
      assert.equal(await retryButton.textContent(), 'Retry failed', 'no count: nothing to retry');
      assert.equal(await retryButton.isDisabled(), true);
      assert.match((await retryButton.getAttribute('title')) ?? '', /bad input that a retry cannot fix/);
      await page.locator('li[data-frame="2"] .frame-error', { hasText: 'A retry cannot fix this' }).waitFor();
      await page.screenshot({ path: join(SHOTS_DIR, 'dashboard-shot-failed.png'), fullPage: true });

      // The mixed shot offers the one frame a retry can fix, and the retry renders it.
      await page.goto(`${farm.apiUrl}/shots/${mixed.id}`);
      await page.getByRole('heading', { name: mixed.name, level: 1 }).waitFor();
      await page.getByRole('button', { name: 'Retry failed (1)' }).click();
      await page.locator('li[data-frame="2"][data-state="completed"]').waitFor({ timeout: 60_000 });
      await page.locator('.shot-head .badge-failed').waitFor({ timeout: 30_000 });
      await waitForShot(farm.apiUrl, mixed.id, (s) => s.state === 'failed', 30_000, token);
      const after = await shotFrames(farm.apiUrl, mixed.id, token);
      assert.deepEqual(after.map((f) => [f.state, f.error?.code]), [['failed', 'INVALID_IMAGE'], ['completed', undefined]]);
      await page.getByRole('button', { name: 'Retry failed', exact: true }).waitFor();
      assert.equal(await page.getByRole('button', { name: 'Retry failed', exact: true }).isDisabled(), true, 'only the permanent failure is left');
      assert.equal(await fill('.shot-head'), RED);
    } finally {
      await context.close();
      redis.disconnect();
      objects.destroy();
    }
  });

  it('lists shots by name with their studio ids, finds them by either, and shows the frames’ file names', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const small = 64;
      const reference = await encodePng(halfImage(small, small, COLOURS.red, COLOURS.grey));
      const sketches = await Promise.all([0, 1].map((i) => encodePng(sketchFrame(small, small, i, 2).image)));
      const submit = async (request: Record<string, unknown>, frameNames: string[]) => {
        const r = await fetch(`${farm.apiUrl}/v1/shots`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
          body: shotForm({ settings: { mode: 'vanilla', steps: 4, width: small, height: small }, ...request }, { reference, frames: sketches, frameNames }),
        });
        const body = (await r.json()) as ShotView;
        assert.equal(r.status, 201, JSON.stringify(body));
        return body;
      };
      const rooftop = await submit({ name: 'Rooftop chase', externalIds: { show: 'MOON', sequence: 'sq020', shot: 'sh010' } }, ['sh010_0001.png', 'sh010_0002.png']);
      const market = await submit({}, ['market_night_0001.png', 'market_night_0002.png']);
      assert.equal(market.name, 'market_night', 'named after its frames');

      const page = await context.newPage();
      await page.goto(`${farm.apiUrl}/`);
      await page.getByLabel('API key').fill(token);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Shots', level: 1 }).waitFor();

      // The list shows names, with the id and studio ids beneath.
      const rooftopRow = page.locator(`tr[data-shot="${rooftop.id}"]`);
      const marketRow = page.locator(`tr[data-shot="${market.id}"]`);
      await rooftopRow.getByRole('link', { name: 'Rooftop chase' }).waitFor();
      await marketRow.getByRole('link', { name: 'market_night' }).waitFor();
      assert.match(await rooftopRow.innerText(), new RegExp(`${rooftop.id}[\\s\\S]*MOON · sq020 · sh010`));

      // The search box asks the farm: by studio id, by name (any case), and for what is not there.
      const box = page.getByLabel('Find a shot');
      await box.fill('SQ020');
      await marketRow.waitFor({ state: 'detached' });
      assert.equal(await rooftopRow.count(), 1);
      await box.fill('market');
      await rooftopRow.waitFor({ state: 'detached' });
      await marketRow.waitFor();
      await box.fill('no shot is called this');
      await page.getByText('No shot matches “no shot is called this”.').waitFor();
      await box.fill('rooftop');
      await rooftopRow.waitFor();
      await page.screenshot({ path: join(SHOTS_DIR, 'dashboard-shots-search.png'), fullPage: true });

      // The shot page: the name as its title, the studio ids, each frame's file name.
      await rooftopRow.getByRole('link', { name: 'Rooftop chase' }).click();
      await page.getByRole('heading', { name: 'Rooftop chase', level: 1 }).waitFor();
      const meta = await page.locator('.shot-head .meta').innerText();
      for (const text of [rooftop.id, 'MOON', 'sq020', 'sh010']) assert.ok(meta.includes(text), `${text} in ${meta}`);
      await page.locator('li[data-frame="1"] .frame-file', { hasText: 'sh010_0001.png' }).waitFor();
      await page.locator('li[data-frame="2"] .frame-file', { hasText: 'sh010_0002.png' }).waitFor();
      await page.screenshot({ path: join(SHOTS_DIR, 'dashboard-shot-named.png'), fullPage: true });
      for (const shot of [rooftop, market]) await waitForShot(farm.apiUrl, shot.id, (s) => s.state === 'completed', 60_000, token);
    } finally {
      await context.close();
    }
  });

  it("pages a long shot's frame strip: 60 frames at a time, more on demand, one state at a time", async () => {
    const redis = new Redis(farm.redis.url);
    const store = new ShotStore(redis, farm.env.REDIS_PREFIX);
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      // 130 frames awaiting their uploads (so no image to load), five of them failed.
      const r = await fetch(`${farm.apiUrl}/v1/shots`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ settings: { steps: 4 }, reference: { upload: true }, frames: { upload: 130 } }),
      });
      assert.equal(r.status, 201, await r.clone().text());
      const shot = (await r.json()) as ShotView;
      const failed = [7, 64, 65, 120, 129];
      for (const f of failed) {
        await store.setFrame(shot.id, f, { state: 'active', attempts: 1, worker: 'w1' });
        await store.setFrame(shot.id, f, { state: 'failed', error: { code: 'RUNTIME', message: `frame ${f} broke` } });
      }

      const page = await context.newPage();
      await page.goto(`${farm.apiUrl}/`);
      await page.getByLabel('API key').fill(token);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Shots', level: 1 }).waitFor();
      await page.goto(`${farm.apiUrl}/shots/${shot.id}`);
      const shown = () => page.evaluate<string>("[...document.querySelectorAll('ol.strip > li')].map((li) => li.dataset.frame).join(',')");
      const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i).join(',');
      await until('the first 60 frames', async () => (await shown()) === range(1, 60));
      const more = page.getByRole('button', { name: 'Show more frames' });
      await more.click();
      await until('the next 60', async () => (await shown()) === range(1, 120));
      await more.click();
      await until('all 130', async () => (await shown()) === range(1, 130));
      assert.equal(await more.count(), 0, 'nothing more to show');

      await page.locator('.strip-filter select').selectOption('failed');
      await until('only the failed frames', async () => (await shown()) === failed.join(','));
      assert.equal(await page.locator('ol.strip > li[data-state="failed"] .frame-error', { hasText: 'broke' }).count(), 5);
      assert.match((await page.locator('.strip-filter select').innerText()) ?? '', /Failed \(5\)/);
      await page.screenshot({ path: join(SHOTS_DIR, 'dashboard-shot-frames-failed.png'), fullPage: true });
    } finally {
      await context.close();
      redis.disconnect();
    }
  });

  it('shuts the API down cleanly on SIGTERM while a live stream is open', async () => {
    const r = await fetch(`${farm.apiUrl}/v1/live`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200);
    const reader = r.body!.getReader();
    await reader.read();
    const started = Date.now();
    const code = await farm.api.kill('SIGTERM');
    assert.equal(code, 0, farm.api.output.slice(-20).join('\n'));
    assert.ok(Date.now() - started < 10_000, 'an open SSE stream does not hold the shutdown');
    for (;;) if ((await reader.read()).done) break;
  });
});
