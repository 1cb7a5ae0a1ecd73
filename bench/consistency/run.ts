/**
 * Consistency bench: how much each of a shot's consistency options lowers flicker, measured side
 * by side in one run on the same generated moving sequence.
 *
 *   node --import tsx bench/consistency/run.ts [--frames 8] [--steps 8] [--size 256] [--seed 1234] [--pack <dir>]
 *
 * The bench pack (random-weight UNet, tools/model-kit/src/bench-pack.ts; built into `packs/bench`
 * when missing or stale) makes the output depend on the starting noise, as the real model does —
 * the analytic pack would not. A circle drawn as a sketch moves across the frame; every frame is
 * colorized (vanilla, guidance 4) under each condition:
 *
 *   per-frame noise      the default: frame k from seed + k − 1
 *   shared noise         Consistency `sharedNoise`: every frame from the seed
 *   palette lock         `paletteLock: reference` over per-frame noise (libs/qa palette-lock.ts)
 *   shared + lock        both
 *   chain                `referenceChain: previous` in links of 2 (with and without shared noise)
 *
 * and scored with the shot QA of every frame (libs/qa): flicker against the previous frame
 * (mean ΔE00 where the line art did not change, and the share over the JND), and palette distance
 * to the reference. Prints a table and the ratios to the default; writes bench/results/consistency.json.
 * Always exits 0: a bench, not a test (bench/README.md).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { colorizeFrame } from '@celfarm/pipeline/colorize';
import { OrtRuntime } from '@celfarm/pipeline/ort/runtime';
import { ModelPack } from '@celfarm/pipeline/pack/loader';
import { prepareReference } from '@celfarm/pipeline/reference';
import { resolveSettings } from '@celfarm/pipeline/settings';
import type { Planar } from '@celfarm/pipeline';
import { buildBenchPack, isBenchPackCurrent } from '@celfarm/model-kit/bench-pack';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { analyzeFrame, lineMap, lockPalette, referencePalette, scoreFrame, type FrameAnalysis } from '@celfarm/qa';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Args {
  frames: number;
  steps: number;
  size: number;
  seed: number;
  pack: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { frames: 8, steps: 8, size: 256, seed: 1234, pack: join(ROOT, 'packs', 'bench') };
  const usage = 'usage: run.ts [--frames 8] [--steps 8] [--size 256] [--seed 1234] [--pack <dir>]';
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split('=', 2) as [string, string | undefined];
    const value = () => inline ?? argv[++i] ?? '';
    const int = (min: number) => {
      const v = Number(value());
      if (!Number.isInteger(v) || v < min) throw new Error(`${flag} needs an integer ≥ ${min}\n${usage}`);
      return v;
    };
    if (flag === '--frames') args.frames = int(2);
    else if (flag === '--steps') args.steps = int(1);
    else if (flag === '--size') args.size = int(64);
    else if (flag === '--seed') args.seed = int(0);
    else if (flag === '--pack') args.pack = resolve(value());
    else throw new Error(`unknown option ${flag}\n${usage}`);
  }
  return args;
}

interface Condition {
  name: string;
  sharedNoise: boolean;
  paletteLock: boolean;
  /** The lock's reach (ΔE00) when not the farm's default. */
  reach?: number;
  /** Reference chain `previous` with links of this many frames. */
  chainLink?: number;
}

const CONDITIONS: Condition[] = [
  { name: 'per-frame noise (default)', sharedNoise: false, paletteLock: false },
  { name: 'shared noise', sharedNoise: true, paletteLock: false },
  { name: 'palette lock', sharedNoise: false, paletteLock: true },
  { name: 'palette lock, reach 100', sharedNoise: false, paletteLock: true, reach: 100 },
  { name: 'shared noise + palette lock', sharedNoise: true, paletteLock: true },
  { name: 'reference chain, links of 2', sharedNoise: false, paletteLock: false, chainLink: 2 },
  { name: 'shared noise + chain of 2', sharedNoise: true, paletteLock: false, chainLink: 2 },
];

interface Result {
  name: string;
  flickerMean: number;
  flickerShare: number;
  palette: number;
  seconds: number;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (!(await isBenchPackCurrent(args.pack))) await buildBenchPack(args.pack);
  const runtime = new OrtRuntime({ providers: ['cpu'] });
  const pack = await ModelPack.load(args.pack, runtime);
  await pack.openAll();
  const base = resolveSettings({ mode: 'vanilla', width: args.size, height: args.size, steps: args.steps, guidanceScale: 4, seed: args.seed }, pack.manifest).settings;
  const S = base.width;
  const reference = halfImage(S, S, COLOURS.red, COLOURS.blue);
  const ctx = await prepareReference(pack, base, { reference });
  const target = referencePalette(reference);
  const sketches = Array.from({ length: args.frames }, (_, i) => sketchFrame(S, base.height, i, args.frames, 6).image);
  console.log(`pack ${pack.ref}, ${S}×${base.height}, ${args.frames} frames of a moving circle, ${base.steps} steps ${base.sampler}, guidance ${base.guidanceScale}, seed ${args.seed}`);

  // The raw outputs per seed, shared between the conditions that use the same noise and reference.
  const rendered = new Map<string, Planar>();
  const render = async (frame: number, seed: number, context = ctx, contextName = 'reference'): Promise<Planar> => {
    const key = `${frame}/${seed}/${contextName}`;
    const hit = rendered.get(key);
    if (hit) return hit;
    const out = await colorizeFrame(pack, { ...base, seed }, context, sketches[frame]!);
    rendered.set(key, out.images[0]!);
    return out.images[0]!;
  };

  const results: Result[] = [];
  for (const c of CONDITIONS) {
    const t0 = performance.now();
    let previous: FrameAnalysis | null = null;
    const flickerMean: number[] = [];
    const flickerShare: number[] = [];
    const palette: number[] = [];
    // Reference chain `previous`: link j renders from the output of the last frame of link j − 1
    // (frames in order here; the farm makes a link wait for it), one context per link.
    let chainCtx = ctx;
    let chainName = 'reference';
    const outputs: Planar[] = [];
    for (let k = 0; k < args.frames; k++) {
      if (c.chainLink && k > 0 && k % c.chainLink === 0) {
        chainCtx = await prepareReference(pack, base, { reference: outputs[k - 1]! });
        chainName = `${c.name}/link${k / c.chainLink}`;
      }
      let output = await render(k, c.sharedNoise ? args.seed : args.seed + k, chainCtx, chainName);
      outputs.push(output);
      if (c.paletteLock) output = lockPalette(output, lineMap(sketches[k]!, 'dark-lines', 0.5), target, c.reach ? { maxDeltaE: c.reach } : {}).image;
      const analysis = analyzeFrame({ output, sketch: sketches[k]! });
      const scores = scoreFrame({ frame: analysis, previous, reference: target });
      if (scores.scores.flickerMean.value !== null) flickerMean.push(scores.scores.flickerMean.value);
      if (scores.scores.flickerShare.value !== null) flickerShare.push(scores.scores.flickerShare.value);
      if (scores.scores.palette.value !== null) palette.push(scores.scores.palette.value);
      previous = analysis;
    }
    results.push({ name: c.name, flickerMean: mean(flickerMean), flickerShare: mean(flickerShare), palette: mean(palette), seconds: (performance.now() - t0) / 1000 });
  }

  const d = results[0]!;
  const pad = (s: string, n: number) => s.padEnd(n);
  console.log(`\n${pad('condition', 30)} ${pad('flicker ΔE00', 13)} ${pad('over JND', 10)} ${pad('palette ΔE00', 13)} flicker/default  share/default`);
  for (const r of results) {
    console.log(
      `${pad(r.name, 30)} ${pad(r.flickerMean.toFixed(2), 13)} ${pad(`${(100 * r.flickerShare).toFixed(1)}%`, 10)} ${pad(r.palette.toFixed(2), 13)} ` +
        `${pad((r.flickerMean / d.flickerMean).toFixed(3), 16)} ${(r.flickerShare / d.flickerShare).toFixed(3)}`,
    );
  }
  await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
  await writeFile(join(ROOT, 'bench', 'results', 'consistency.json'), `${JSON.stringify({ args: { ...args, pack: undefined }, results }, null, 2)}\n`);
  await pack.dispose();
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exitCode = 1;
});
