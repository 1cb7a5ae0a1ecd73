/**
 * Test fixtures: analytic packs built once per process into a cache folder (seconds), and the
 * expected images of the analytic pack's documented closed form.
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ANALYTIC_BUILDER, BENCH_BUILDER, buildAnalyticPack, buildBenchPack } from '@celfarm/model-kit';
import type { GraphName } from '../src/pack/contract.ts';
import { ModelPack } from '../src/pack/loader.ts';
import { OrtRuntime } from '../src/ort/runtime.ts';
import { resolveSettings, type ResolvedSettings, type ResolveOptions, type SettingsInput } from '../src/settings.ts';

export const ROOT = resolve(import.meta.dirname, '../../..');
const CACHE = join(ROOT, '.cache', 'test-packs');
const building = new Map<string, Promise<string>>();

/** Folder of an analytic pack variant, built on first use in this process (or reused). */
export function analyticPackDir(variant: { id?: string; prediction?: 'v' | 'eps'; omit?: GraphName[] } = {}): Promise<string> {
  const id = variant.id ?? `analytic${variant.prediction === 'eps' ? '-eps' : ''}${variant.omit?.length ? `-no-${variant.omit.join('-')}` : ''}`;
  let p = building.get(id);
  if (!p) {
    p = (async () => {
      // Keyed by builder version; built aside and renamed so parallel test files never see half a pack.
      const dir = join(CACHE, ANALYTIC_BUILDER.replace(/[^a-z0-9]+/gi, '-'), id);
      if (!existsSync(join(dir, 'pack.json'))) {
        const tmp = `${dir}.tmp-${process.pid}`;
        await mkdir(tmp, { recursive: true });
        await buildAnalyticPack(tmp, { id, prediction: variant.prediction ?? 'v', omit: variant.omit });
        try {
          await rename(tmp, dir);
        } catch {
          await rm(tmp, { recursive: true, force: true }); // another process won the race
        }
      }
      return dir;
    })();
    building.set(id, p);
  }
  return p;
}

let benchBuilding: Promise<string> | undefined;

/**
 * A small bench pack (tools/model-kit bench-pack.ts: a random-weight UNet of width 16 whose output
 * depends on x, unlike the analytic UNet's), built on first use like the analytic packs.
 */
export function benchPackDir(): Promise<string> {
  benchBuilding ??= (async () => {
    const dir = join(CACHE, `${ANALYTIC_BUILDER}-${BENCH_BUILDER}`.replace(/[^a-z0-9]+/gi, '-'), 'bench-16');
    if (!existsSync(join(dir, 'pack.json'))) {
      const tmp = `${dir}.tmp-${process.pid}`;
      await mkdir(tmp, { recursive: true });
      await buildBenchPack(tmp, { id: 'bench-16', width: 16 });
      try {
        await rename(tmp, dir);
      } catch {
        await rm(tmp, { recursive: true, force: true });
      }
    }
    return dir;
  })();
  return benchBuilding;
}

const runtime = new OrtRuntime({ intraOpThreads: 1 });
const packs = new Map<string, Promise<ModelPack>>();
export function loadPack(variant: Parameters<typeof analyticPackDir>[0] = {}): Promise<ModelPack> {
  const key = JSON.stringify(variant);
  let p = packs.get(key);
  if (!p) {
    p = analyticPackDir(variant).then((dir) => ModelPack.load(dir, runtime));
    packs.set(key, p);
  }
  return p;
}

let benchPack: Promise<ModelPack> | undefined;
export function loadBenchPack(): Promise<ModelPack> {
  benchPack ??= benchPackDir().then((dir) => ModelPack.load(dir, runtime));
  return benchPack;
}

/** Settings resolved for `pack` as the API would (seed −1 drawn deterministically). */
export const settingsFor = (pack: ModelPack, s: SettingsInput, options: ResolveOptions = {}): ResolvedSettings =>
  resolveSettings(s, pack.manifest, { random: () => 0.5, ...options }).settings;

/** Mean RGB of a Planar over a square window centred at (x, y). */
export function rgbAt(img: { data: Float32Array; width: number; height: number }, x: number, y: number, half = 2): number[] {
  const out = [0, 0, 0];
  let n = 0;
  for (let yy = Math.round(y) - half; yy <= Math.round(y) + half; yy++) {
    for (let xx = Math.round(x) - half; xx <= Math.round(x) + half; xx++) {
      for (let c = 0; c < 3; c++) out[c]! += img.data[(c * img.height + yy) * img.width + xx]!;
      n++;
    }
  }
  return out.map((v) => v / n);
}

export function assertClose(actual: number[], expected: number[], tol: number, what: string): void {
  for (let i = 0; i < expected.length; i++) {
    if (!(Math.abs(actual[i]! - expected[i]!) <= tol)) {
      throw new Error(`${what}: got [${actual.map((v) => v.toFixed(4))}], expected [${expected.map((v) => v.toFixed(4))}] (±${tol})`);
    }
  }
}
