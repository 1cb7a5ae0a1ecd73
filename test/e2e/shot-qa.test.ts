/**
 * Shot QA review in a real browser (Debian's chromium, driven by playwright-core) against the
 * real farm: a completed shot whose thin-lined frames the analytic pack loses (flagged for line
 * fidelity by the default thresholds) shows "needs review" on those frames, their scores with
 * units, flicker across the shot as a sparkline, the needs-review filter, the side-by-side review
 * of one frame — then approving it and rendering it again with another seed, keeping the take.
 * Screenshots go to out/screenshots.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { until as waitUntil } from '@celfarm/services';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { encodePng } from '@celfarm/pipeline/image/codec';
import { ROOT, createApiKey, shotForm, shotFrames, startFarm, waitForShot, type Farm, type ShotView } from '../harness.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS_DIR = join(ROOT, 'out', 'screenshots');
const SIZE = 128;

const until = <T>(what: string, check: () => Promise<T | undefined | false>, ms = 30_000) =>
  waitUntil(what, check, { timeoutMs: ms, intervalMs: 100, retryErrors: true });

/** Whether every image matching `selector` has decoded (a string: no DOM types in this program). */
const allDecoded = (page: Page, selector: string) =>
  page.evaluate<boolean>(`(() => {
    const imgs = [...document.querySelectorAll(${JSON.stringify(selector)})];
    return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);
  })()`);

describe('shot QA review in the dashboard', () => {
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
    token = await createApiKey(farm, 'demo', ['submit', 'read', 'admin'], 'shot QA e2e');
  });
  after(async () => {
    await browser?.close();
    await farm?.stop();
  });

  it('shows scores, flicker and needs review; approves a frame and renders it again with another seed', async () => {
    // Frames 2 and 3 have 2-px lines the analytic pack loses (it inks whole latent cells): flagged
    // for line fidelity. Frames 1 and 4 keep their 6-px lines. Flicker: frame 3 repeats frame 2.
    const [bold, thin] = await Promise.all([6, 2].map((stroke) => encodePng(sketchFrame(SIZE, SIZE, 1, 3, stroke).image)));
    const reference = await encodePng(halfImage(SIZE, SIZE, COLOURS.red, COLOURS.grey));
    const r = await fetch(`${farm.apiUrl}/v1/shots`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: shotForm({ project: 'demo', name: 'QA review', settings: { mode: 'vanilla', steps: 4, seed: 3, width: SIZE, height: SIZE } }, { reference, frames: [bold!, thin!, thin!, bold!] }),
    });
    const submitted = (await r.json()) as ShotView;
    assert.equal(r.status, 201, JSON.stringify(submitted));
    const done = await waitForShot(farm.apiUrl, submitted.id, (s) => s.state === 'completed' || s.state === 'failed', 60_000, token);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    assert.deepEqual([done.flagged, done.needsReview], [2, 2], 'frames 2 and 3 wait for review');

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/401|Unauthorized/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    try {
      await page.goto(`${farm.apiUrl}/`);
      await page.getByLabel('API key').fill(token);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Shots', level: 1 }).waitFor();
      await page.goto(`${farm.apiUrl}/shots/${submitted.id}`);
      await page.getByRole('heading', { name: 'QA review', level: 1 }).waitFor();

      // Frame cards: the flagged ones say so, their line fidelity (in %) stands out; the others do not.
      const card = (n: number) => page.locator(`ol.strip > li[data-frame="${n}"]`);
      await card(2).locator('.badge-review', { hasText: 'Needs review' }).waitFor();
      await card(3).locator('.badge-review').waitFor();
      assert.equal(await card(1).locator('.badge-review').count(), 0);
      assert.equal(await card(4).locator('.badge-review').count(), 0);
      assert.match(await card(2).locator('.qa-past[data-score="lineFidelity"] dd').innerText(), /^\d+(\.\d)? %/);
      assert.equal(await card(1).locator('.qa-past').count(), 0, 'frame 1 passes every threshold');
      assert.match(await card(1).locator('[data-score="palette"] dd').innerText(), /^\d+\.\d\d ΔE00$/);
      assert.match(await card(1).locator('[data-score="flickerMean"] dd').innerText(), /^n\/a$/, 'the first frame has no flicker');

      // The QA section: counts from the shot view, and flicker of frames 2–4 with the threshold.
      assert.match(await page.locator('.qa-counts [data-count="needs-review"]').innerText(), /^2 frames need review$/);
      const chart = page.getByRole('slider', { name: 'Flicker by frame' });
      await until('three flicker points', async () => (await chart.getAttribute('data-points')) === '3');
      assert.equal(await page.locator('.sparkline-threshold').count(), 1, 'the threshold line');
      assert.equal(await page.locator('.sparkline circle[data-frame]').count(), 3);

      // The needs-review filter asks the farm for frames 2 and 3.
      const filter = page.locator('.strip-filter select');
      assert.match(await filter.innerText(), /Needs review \(2\)[\s\S]*Flagged \(2\)/);
      await filter.selectOption('needs-review');
      const listed = () => page.evaluate<string>("[...document.querySelectorAll('ol.strip > li')].map((li) => li.dataset.frame).join(',')");
      await until('frames 2 and 3 listed', async () => (await listed()) === '2,3');

      // The sparkline picks frames: a click on a point, then ← → from the keyboard.
      await page.locator('.sparkline circle[data-frame="4"]').click();
      await page.getByRole('heading', { name: /^Review frame 4/ }).waitFor();
      await chart.focus();
      await page.keyboard.press('ArrowLeft');
      await page.getByRole('heading', { name: /^Review frame 3/ }).waitFor();
      assert.equal(await chart.getAttribute('aria-valuenow'), '3');
      assert.equal(await page.evaluate<string | undefined>('document.activeElement?.getAttribute("role")'), 'slider', 'stepping keeps the focus on the chart');

      // From a card: the review panel takes the focus and shows the four images side by side.
      await card(2).getByRole('button', { name: 'Review frame 2' }).click();
      const panel = page.locator('section.review[data-frame="2"]');
      await panel.getByRole('heading', { name: /^Review frame 2/ }).waitFor();
      assert.equal(await page.evaluate<string | undefined>('document.activeElement?.id'), 'review-title');
      for (const alt of ['Shot QA review, colour reference', 'Frame 2, sketch', 'Frame 2, colour', 'Frame 1, colour']) await panel.getByAltText(alt).waitFor();
      await until('the four images decoded', () => allDecoded(page, 'section.review img'));
      assert.equal(await panel.locator('img').count(), 4);
      assert.match(await panel.locator('tr.qa-past[data-score="lineFidelity"]').innerText(), /below 80 % is flagged/);

      // A seed that is not one is refused in place, code and message.
      await panel.getByLabel('Seed').fill('twelve');
      await panel.getByRole('button', { name: 'Re-render with another seed' }).click();
      await panel.getByRole('alert').filter({ hasText: 'INVALID_SEED' }).waitFor();
      await page.screenshot({ path: join(SHOTS_DIR, 'dashboard-shot-qa.png'), fullPage: true });

      // Approve: the badge turns, the frame leaves the needs-review list, the counts follow.
      await panel.getByRole('button', { name: 'Approve' }).click();
      await panel.locator('.badge-approved').waitFor();
      assert.equal(await panel.getByRole('button', { name: 'Approved' }).isDisabled(), true, 'an approved take cannot be approved again');
      await until('frame 2 off the needs-review list', async () => (await listed()) === '3');
      await page.locator('.qa-counts [data-count="needs-review"]', { hasText: /^1 frame needs review$/ }).waitFor();
      await filter.selectOption('all');
      await card(2).locator('.badge-approved', { hasText: 'Approved' }).waitFor();
      assert.equal(await card(2).locator('.badge-review').count(), 0);
      const approved = await shotFrames(farm.apiUrl, submitted.id, token);
      assert.deepEqual([approved[1]!.review?.state, approved[1]!.needsReview], ['approved', false]);

      // Re-render frame 2 with seed 77: the shot runs again, the frame comes back with its old take kept.
      const oldSeed = approved[1]!.seed;
      const oldOutput = await panel.getByAltText('Frame 2, colour').getAttribute('src');
      await panel.getByLabel('Seed').fill('77');
      await panel.getByRole('button', { name: 'Re-render with another seed' }).click();
      await panel.locator('.takes li', { hasText: `Seed ${oldSeed}` }).waitFor();
      await panel.getByText('Output (seed 77)').waitFor();
      const again = await waitForShot(farm.apiUrl, submitted.id, (s) => s.round === 1 && (s.state === 'completed' || s.state === 'failed'), 60_000, token);
      assert.equal(again.state, 'completed', JSON.stringify(again.error));
      await page.locator('.shot-head .badge-completed').waitFor();
      const newOutput = await until('the new take shown', async () => {
        const src = await panel.locator('img[data-kind="review-output"]').getAttribute('src', { timeout: 200 }).catch(() => null);
        return src && src !== oldOutput ? src : undefined;
      });
      assert.ok(newOutput, 'the new take, not the cached old one');
      await until('the new take and the old one decoded', () => allDecoded(page, 'section.review img'));
      assert.equal(await panel.locator('img').count(), 5, 'four side by side, one earlier take');
      assert.equal(await panel.locator('.takes .badge-approved').count(), 1, 'the approval stays with the old take');
      // The new take has the same thin lines: it waits for review again.
      await card(2).locator('.badge-review').waitFor();
      assert.equal(await panel.getByRole('button', { name: 'Approve' }).isDisabled(), false);
      await page.screenshot({ path: join(SHOTS_DIR, 'dashboard-shot-review.png'), fullPage: true });
      await page.setViewportSize({ width: 768, height: 1024 });
      await page.screenshot({ path: join(SHOTS_DIR, 'dashboard-shot-review-768.png'), fullPage: true });

      // The shots list says how many frames wait for review.
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Shots' }).click();
      await page.locator(`tr[data-shot="${submitted.id}"] [data-count="needs-review"]`, { hasText: '2 need review' }).waitFor();

      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
