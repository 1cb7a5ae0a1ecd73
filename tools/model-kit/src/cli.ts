/**
 * model-kit command line.
 *
 *   tsx tools/model-kit/src/cli.ts build --out <dir> [--force]
 *
 * builds `<dir>/analytic` (v-prediction) and `<dir>/analytic-eps` (eps-prediction). A pack whose
 * pack.json was written by the same builder version (and whose graph files still match their
 * hashes) is skipped unless `--force`.
 *
 *   tsx tools/model-kit/src/cli.ts bench-pack --out <dir> [--force]
 *
 * builds `<dir>/bench`, the random-weight bench pack (src/bench-pack.ts; not part of `build`),
 * skipped the same way when current.
 */
import { realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ANALYTIC_BUILDER, buildAnalyticPack, type Prediction } from './analytic.ts';
import { BENCH_BUILDER, buildBenchPack, isBenchPackCurrent } from './bench-pack.ts';
import { packIsCurrent } from './pack-writer.ts';

const USAGE = 'usage: model-kit build --out <dir> [--force]\n       model-kit bench-pack --out <dir> [--force]';

const PACKS: { id: string; prediction: Prediction }[] = [
  { id: 'analytic', prediction: 'v' },
  { id: 'analytic-eps', prediction: 'eps' },
];

/** True when `dir/pack.json` was written by this builder version for this prediction and every file's hash matches. */
export function isPackCurrent(dir: string, prediction: Prediction): Promise<boolean> {
  return packIsCurrent(dir, (m) => m.description.includes(`builder=${ANALYTIC_BUILDER}`) && m.prediction === prediction);
}

interface Args {
  command: string | undefined;
  out: string | undefined;
  force: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { command: undefined, out: undefined, force: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--force') args.force = true;
    else if (a === '--out') args.out = argv[++i];
    else if (a.startsWith('--out=')) args.out = a.slice('--out='.length);
    else if (a === '--help' || a === '-h') args.command = 'help';
    else if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
    else if (args.command === undefined) args.command = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  return args;
}

/** Runs the CLI; returns the exit code. */
export async function runCli(argv: string[], log: (line: string) => void = console.log): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.command === 'help') {
    log(USAGE);
    return 0;
  }
  if (args.command === 'bench-pack' && args.out) {
    const dir = join(resolve(args.out), 'bench');
    const t0 = performance.now();
    if (!args.force && (await isBenchPackCurrent(dir))) {
      log(`bench: up to date (${BENCH_BUILDER}) at ${dir} [${(performance.now() - t0).toFixed(0)} ms]`);
      return 0;
    }
    const manifest = await buildBenchPack(dir);
    const n = Object.keys(manifest.graphs).length;
    log(`bench: built ${n} graphs at ${dir} in ${(performance.now() - t0).toFixed(0)} ms`);
    return 0;
  }
  if (args.command !== 'build' || !args.out) {
    console.error(USAGE);
    return 2;
  }
  const root = resolve(args.out);
  for (const { id, prediction } of PACKS) {
    const dir = join(root, id);
    const t0 = performance.now();
    if (!args.force && (await isPackCurrent(dir, prediction))) {
      log(`${id}: up to date (${ANALYTIC_BUILDER}) at ${dir} [${(performance.now() - t0).toFixed(0)} ms]`);
      continue;
    }
    const manifest = await buildAnalyticPack(dir, { id, prediction });
    const n = Object.keys(manifest.graphs).length;
    log(`${id}: built ${n} graphs at ${dir} in ${(performance.now() - t0).toFixed(0)} ms`);
  }
  return 0;
}

const isMain = (): boolean => {
  try {
    return !!process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
  } catch {
    return false;
  }
};

if (isMain()) {
  runCli(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
