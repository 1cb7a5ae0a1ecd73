/**
 * Pipeline bench: how much of a frame's wall time is spent inside ONNX Runtime, the orchestration
 * overhead per sampler step, and whether memory grows over a run of frames.
 *
 *   node --import tsx bench/pipeline/run.ts [--frames 50] [--steps 20] [--size 512] [--pack <dir>] [--threads 0]
 *
 * Uses the bench pack (random-weight UNet, tools/model-kit/src/bench-pack.ts), built into
 * `packs/bench` when missing or stale. Runs `colorizeFrame` in this thread (no worker host),
 * vanilla mode, guidance scale 4 (CFG: UNet batch 2). Prints one line per frame, then a summary of
 * `name: value (goal)` lines, and writes the numbers to bench/results/pipeline.json.
 * Always exits 0: it is a bench, not a test. See bench/README.md.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { colorizeFrame, type Stage } from '@celfarm/pipeline/colorize';
import { OrtRuntime } from '@celfarm/pipeline/ort/runtime';
import { ModelPack } from '@celfarm/pipeline/pack/loader';
import { prepareReference } from '@celfarm/pipeline/reference';
import { resolveSettings } from '@celfarm/pipeline/settings';
import { BENCH_WIDTH, buildBenchPack, isBenchPackCurrent } from '@celfarm/model-kit/bench-pack';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const GOAL_ORT_SHARE = 0.97;
const GOAL_RSS_GROWTH = 1.05;

interface Args {
  frames: number;
  steps: number;
  size: number;
  pack: string;
  threads: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { frames: 50, steps: 20, size: 512, pack: join(ROOT, 'packs', 'bench'), threads: 0 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split('=', 2) as [string, string | undefined];
    const value = () => inline ?? argv[++i] ?? '';
    const int = (name: string) => {
      const v = Number(value());
      if (!Number.isInteger(v) || v < 0) throw new Error(`${name} needs a non-negative integer`);
      return v;
    };
    if (flag === '--frames') args.frames = Math.max(1, int(flag));
    else if (flag === '--steps') args.steps = Math.max(1, int(flag));
    else if (flag === '--size') args.size = int(flag);
    else if (flag === '--threads') args.threads = int(flag);
    else if (flag === '--pack') args.pack = resolve(value());
    else throw new Error(`unknown option ${flag}\nusage: run.ts [--frames 50] [--steps 20] [--size 512] [--pack <dir>] [--threads 0]`);
  }
  return args;
}

const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const mib = (bytes: number) => bytes / 1024 / 1024;
const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

interface FrameSample {
  frame: number;
  wallMs: number;
  ortMs: number;
  unetCalls: number;
  unetMs: number;
  rssMiB: number;
  stagesMs: Partial<Record<Stage, number>>;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));

  // Pack.
  let t0 = performance.now();
  if (await isBenchPackCurrent(args.pack)) {
    console.log(`pack: ${args.pack} (up to date)`);
  } else {
    await buildBenchPack(args.pack);
    console.log(`pack: built ${args.pack} in ${(performance.now() - t0).toFixed(0)} ms`);
  }
  const runtime = new OrtRuntime({ providers: ['cpu'], intraOpThreads: args.threads });
  const pack = await ModelPack.load(args.pack, runtime);
  await pack.openAll();
  const unet = await pack.session('unet');
  const provider = unet.provider;

  const { settings, warnings } = resolveSettings(
    { mode: 'vanilla', width: args.size, height: args.size, steps: args.steps, guidanceScale: 4, seed: 1234 },
    pack.manifest,
  );
  for (const w of warnings) console.log(`settings (${w.field}): ${w.message}`);
  const S = settings.width;
  t0 = performance.now();
  const ctx = await prepareReference(pack, settings, { reference: halfImage(S, S, COLOURS.red, COLOURS.blue) });
  console.log(
    `setup: pack ${pack.ref}, ${S}×${settings.height}, ${settings.steps} steps ${settings.sampler}, ` +
      `guidance ${settings.guidanceScale} (UNet batch 2), provider ${provider}, intra-op threads ${args.threads || 'default'}, ` +
      `context ${(performance.now() - t0).toFixed(0)} ms`,
  );

  // Sketches are generated up front so their cost stays out of the frame timings.
  const sketches = Array.from({ length: args.frames }, (_, i) => sketchFrame(S, settings.height, i, args.frames).image);

  const samples: FrameSample[] = [];
  let maxRss = 0;
  for (let i = 0; i < args.frames; i++) {
    const ortBefore = runtime.stats.seconds;
    const unetBefore = runtime.stats.byGraph.get('unet') ?? { runs: 0, seconds: 0 };
    const unetRuns0 = unetBefore.runs;
    const unetSec0 = unetBefore.seconds;
    const start = performance.now();
    const result = await colorizeFrame(pack, settings, ctx, sketches[i]!);
    const wallMs = performance.now() - start;
    const ortMs = (runtime.stats.seconds - ortBefore) * 1000;
    const unetAfter = runtime.stats.byGraph.get('unet')!;
    const rss = process.memoryUsage().rss;
    maxRss = Math.max(maxRss, rss);
    const stagesMs = Object.fromEntries(Object.entries(result.timings).map(([k, v]) => [k, v * 1000])) as Partial<
      Record<Stage, number>
    >;
    const sample: FrameSample = {
      frame: i + 1,
      wallMs,
      ortMs,
      unetCalls: unetAfter.runs - unetRuns0,
      unetMs: (unetAfter.seconds - unetSec0) * 1000,
      rssMiB: mib(rss),
      stagesMs,
    };
    samples.push(sample);
    console.log(
      `frame ${String(i + 1).padStart(3)}: wall ${wallMs.toFixed(1)} ms, ORT ${ortMs.toFixed(1)} ms ` +
        `(${pct(ortMs / wallMs)}), overhead ${(wallMs - ortMs).toFixed(1)} ms, ` +
        `UNet ${sample.unetCalls}× ${(sample.unetMs / sample.unetCalls).toFixed(1)} ms, RSS ${mib(rss).toFixed(1)} MiB`,
    );
  }

  const wall = median(samples.map((s) => s.wallMs));
  const ort = median(samples.map((s) => s.ortMs));
  const share = median(samples.map((s) => s.ortMs / s.wallMs));
  const overheadFrame = median(samples.map((s) => s.wallMs - s.ortMs));
  const overheadStep = overheadFrame / settings.steps;
  const unetCall = median(samples.map((s) => s.unetMs / s.unetCalls));
  const unetCalls = median(samples.map((s) => s.unetCalls));
  const rssFirst = samples[0]!.rssMiB;
  const rssMax = mib(maxRss);
  const growth = rssMax / rssFirst;
  const kernelPeak = process.resourceUsage().maxRSS / 1024; // KiB → MiB
  const stages = [...new Set(samples.flatMap((s) => Object.keys(s.stagesMs)))] as Stage[];
  const stageMedians = Object.fromEntries(stages.map((st) => [st, median(samples.map((s) => s.stagesMs[st] ?? 0))]));
  const byGraph = Object.fromEntries(
    [...runtime.stats.byGraph].map(([g, v]) => [g, { runs: v.runs, msPerRun: (v.seconds * 1000) / v.runs }]),
  );

  console.log('');
  console.log('stages (median ms): ' + stages.map((st) => `${st} ${stageMedians[st]!.toFixed(2)}`).join(', '));
  console.log(
    'ORT per graph (ms/run): ' +
      Object.entries(byGraph)
        .map(([g, v]) => `${g} ${v.msPerRun.toFixed(2)} ×${v.runs}`)
        .join(', '),
  );
  console.log('');
  console.log(`== pipeline bench summary (${samples.length} frames, ${settings.steps} steps, ${S}×${settings.height}, CFG N=2) ==`);
  const line = (name: string, value: string, goal = '') => console.log(`${name}: ${value}${goal ? ` (${goal})` : ''}`);
  line('provider', provider);
  line('UNet call (median)', `${unetCall.toFixed(1)} ms`, 'bench pack sized for 50–200 ms');
  line('UNet calls per frame', String(unetCalls));
  line('frame wall time (median)', `${wall.toFixed(1)} ms`);
  line('ORT time per frame (median)', `${ort.toFixed(1)} ms`);
  line('ORT share of frame wall time (median)', pct(share), `goal ≥ ${pct(GOAL_ORT_SHARE)}: ${share >= GOAL_ORT_SHARE ? 'met' : 'NOT met'}`);
  line('orchestration overhead per frame (median)', `${overheadFrame.toFixed(1)} ms`);
  line('orchestration overhead per step', `${overheadStep.toFixed(2)} ms`);
  line('RSS after frame 1', `${rssFirst.toFixed(1)} MiB`);
  line(`RSS max over ${samples.length} frames`, `${rssMax.toFixed(1)} MiB`);
  line('RSS growth max/after frame 1', growth.toFixed(3), `goal ≤ ${GOAL_RSS_GROWTH}: ${growth <= GOAL_RSS_GROWTH ? 'met' : 'NOT met'}`);
  line('peak RSS (kernel maxrss, whole process)', `${kernelPeak.toFixed(1)} MiB`);

  const results = {
    bench: 'pipeline',
    date: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    pack: pack.ref,
    unetWidth: BENCH_WIDTH,
    provider,
    intraOpThreads: args.threads,
    frames: samples.length,
    steps: settings.steps,
    size: { width: S, height: settings.height },
    guidanceScale: settings.guidanceScale,
    unetCallMsMedian: unetCall,
    unetCallsPerFrame: unetCalls,
    frameWallMsMedian: wall,
    frameOrtMsMedian: ort,
    ortShareMedian: share,
    ortShareGoal: GOAL_ORT_SHARE,
    overheadPerFrameMsMedian: overheadFrame,
    overheadPerStepMs: overheadStep,
    rssAfterFrame1MiB: rssFirst,
    rssMaxMiB: rssMax,
    rssGrowth: growth,
    rssGrowthGoal: GOAL_RSS_GROWTH,
    kernelPeakRssMiB: kernelPeak,
    stagesMsMedian: stageMedians,
    ortByGraph: byGraph,
    perFrame: samples,
  };
  const outDir = join(ROOT, 'bench', 'results');
  await mkdir(outDir, { recursive: true });
  const outFile = join(outDir, 'pipeline.json');
  await writeFile(outFile, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`results: ${outFile}`);
  await pack.dispose();
}

main().then(
  () => {
    process.exitCode = 0;
  },
  (e: unknown) => {
    // Missed goals never fail the bench; a crash does.
    console.error('bench failed:', e);
    process.exitCode = 1;
  },
);
