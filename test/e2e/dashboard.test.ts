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
import { ROOT, createApiKey, shotForm, startFarm, type Farm, type ShotView } from '../harness.ts';

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

describe('dashboard in a browser', { skip: existsSync(CHROMIUM) ? false : `no chromium at ${CHROMIUM}` }, () => {
  let farm: Farm;
  let browser: Browser;
  let token: string;

  before(async () => {
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
    let rendering = false;
    await until('the progress bar at 100 %', async () => {
      for (const t of await page.locator('.frame-active .frame-facts dd.mono').allTextContents()) if (/^\d+\/\d+$/.test(t)) steps.add(t);
      if (steps.size > 0 && !rendering) {
        rendering = true;
        await page.screenshot({ path: join(SHOTS_DIR, 'dashboard-shot-rendering.png'), fullPage: true });
      }
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
    assert.match(await worker.innerText(), /\b4\b/, 'the worker counts its four frames');
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
