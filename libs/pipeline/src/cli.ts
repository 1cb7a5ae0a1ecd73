/**
 * `celfarm-pipeline`: colorize from the command line for TDs and debugging.
 *
 *   celfarm-pipeline colorize --pack DIR --sketch a.png --reference r.png [--background b.png]
 *     --mode full --steps 20 --seed 7 --out out.png
 *
 * Every knob of the settings schema is a flag (kebab-case); `--help` lists them with ranges.
 * Inference runs on the pipeline host's thread, so the progress bar keeps moving.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { SingleBar } from 'cli-progress';
import { Command } from 'commander';
import { isPipelineError, PipelineError } from './errors.ts';
import { decodeImage, encodePng } from './image/index.ts';
import { PipelineHost } from './host/host.ts';
import { addKnobOptions, KNOB_KEYS, numberArg } from './knob-flags.ts';
import { readPackManifest } from './pack/manifest.ts';
import { resolveSettings } from './settings.ts';

const DEFAULT_MAX_PIXELS = 4096 * 4096;

async function readImage(path: string, field: string) {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new PipelineError('MISSING_INPUT', `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, field);
  }
  return decodeImage(bytes, field, { maxPixels: DEFAULT_MAX_PIXELS });
}

export function buildProgram(): Command {
  const program = new Command('celfarm-pipeline').description('ColorizeDiffusion v2 on ONNX Runtime');
  const colorizeCmd = program
    .command('colorize')
    .description('colorize one sketch with a colour reference')
    .requiredOption('--pack <dir>', 'model pack folder (pack.json + ONNX graphs)')
    .requiredOption('--sketch <png>', 'line-art sketch (black lines on white unless --preprocessor none)')
    .requiredOption('--reference <png>', 'colour reference image')
    .option('--background <png>', 'background image for background replacement')
    .requiredOption('--out <png>', 'output PNG; with --batch-size > 1, -1, -2 … are inserted before .png')
    .option('--providers <list>', 'execution providers in order of preference, e.g. cuda:0,cpu', 'cpu')
    .option('--threads <n>', 'intra-op threads (0 = one per core)', numberArg('--threads'), 0)
    .option('--quiet', 'no progress bar');
  addKnobOptions(colorizeCmd);
  colorizeCmd.action(async (opts: Record<string, unknown>) => {
    const knobs: Record<string, unknown> = {};
    for (const key of KNOB_KEYS) if (opts[key] !== undefined) knobs[key] = opts[key];
    const sketch = await readImage(String(opts.sketch), 'sketch');
    const reference = await readImage(String(opts.reference), 'reference');
    const background = opts.background ? await readImage(String(opts.background), 'background') : undefined;
    // No farm here: the settings are resolved against the pack's manifest, as the API does at submit.
    const { manifest } = await readPackManifest({ dir: String(opts.pack) });
    const frameSize = { width: sketch.width, height: sketch.height };
    const { settings, warnings } = resolveSettings(knobs, manifest, { background: !!background, frameSize });
    for (const w of warnings) process.stderr.write(`warning (${w.field}): ${w.message}\n`);
    const host = new PipelineHost({
      packDir: String(opts.pack),
      providers: String(opts.providers).split(','),
      intraOpThreads: Number(opts.threads),
    });
    const bar = new SingleBar({ format: '{stage} [{bar}] {value}/{total} steps | {duration_formatted}', hideCursor: true });
    let started = false;
    try {
      const info = await host.ready;
      if (!opts.quiet) {
        process.stderr.write(`pack ${info.pack} (licence ${info.licence.name}${info.licence.commercialUse ? '' : ', non-commercial'}) on ${info.provider}\n`);
      }
      const result = await host.colorize({ sketch, reference, background }, settings, {
        onProgress: (p) => {
          if (opts.quiet) return;
          if (!started) {
            bar.start(p.steps, 0, { stage: p.stage });
            started = true;
          }
          bar.update(p.stage === 'sample' ? p.step : p.stage === 'decode' || p.stage === 'postprocess' ? p.steps : 0, { stage: p.stage.padEnd(10) });
        },
      });
      if (started) bar.stop();
      const out = String(opts.out);
      for (const [i, img] of result.images.entries()) {
        const path = result.images.length === 1 ? out : out.replace(/(\.png)?$/i, `-${i + 1}.png`);
        await writeFile(path, await encodePng(img));
        process.stdout.write(`${path} (${img.width}×${img.height}, seed ${result.seed})\n`);
      }
    } finally {
      if (started) bar.stop();
      await host.close();
    }
  });
  return program;
}

export async function main(argv = process.argv): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (isPipelineError(e)) {
      process.stderr.write(`error [${e.code}]${e.field ? ` (${e.field})` : ''}: ${e.message}\n`);
      return 2;
    }
    const ce = e as { code?: string; exitCode?: number; message?: string };
    if (typeof ce.code === 'string' && ce.code.startsWith('commander.')) return ce.exitCode ?? 1;
    process.stderr.write(`error: ${(e as Error).message}\n`);
    return 1;
  }
}
