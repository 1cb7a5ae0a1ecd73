/**
 * The demo: builds the analytic pack, generates a 4-frame line-art shot and a colour reference,
 * prepares the reference once and colorizes every frame on the pipeline host's inference
 * thread, printing progress, then tells where the outputs are.
 *
 *   npm run demo:pipeline [-- --frames 4 --size 256 --mode full --steps 20 --out out/pipeline-demo]
 */
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { encodePng, PipelineHost, readPackManifest, resolveSettings, type Planar } from '@celfarm/pipeline';
import { COLOURS, referenceImage, sketchFrame, uniformImage } from '@celfarm/model-kit/samples';

const root = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    frames: { type: 'string', default: '4' },
    size: { type: 'string', default: '256' },
    mode: { type: 'string', default: 'full' },
    steps: { type: 'string', default: '20' },
    seed: { type: 'string', default: '7' },
    out: { type: 'string', default: 'out/pipeline-demo' },
  },
});
const frames = Number(values.frames);
const size = Number(values.size);
const outDir = resolve(root, values.out!);
const request = { mode: values.mode, steps: Number(values.steps), seed: Number(values.seed), width: size, height: size };

const copy = (p: Planar): Planar => ({ ...p, data: p.data.slice() });

async function main() {
  const built = spawnSync(process.execPath, ['--import', 'tsx', 'tools/model-kit/src/cli.ts', 'build', '--out', 'packs'], {
    cwd: root,
    stdio: 'inherit',
  });
  if (built.status !== 0) throw new Error('building the analytic pack failed');
  const packDir = join(root, 'packs', 'analytic');

  await mkdir(join(outDir, 'inputs', 'frames'), { recursive: true });
  await mkdir(join(outDir, 'outputs'), { recursive: true });
  const reference = referenceImage(size, size, COLOURS.red, COLOURS.grey);
  const background = uniformImage(size, size, COLOURS.blue);
  await writeFile(join(outDir, 'inputs', 'reference.png'), await encodePng(reference));
  const sketches = Array.from({ length: frames }, (_, i) => sketchFrame(size, size, i, frames).image);
  for (const [i, s] of sketches.entries()) {
    await writeFile(join(outDir, 'inputs', 'frames', `${String(i + 1).padStart(5, '0')}.png`), await encodePng(s));
  }

  // Resolved once against the pack, as the farm's API does at submit; the host takes them as given.
  const { manifest } = await readPackManifest({ dir: packDir });
  const { settings, warnings } = resolveSettings(request, manifest);
  for (const w of warnings) console.warn(`warning (${w.field}): ${w.message}`);
  const replacement = resolveSettings({ ...request, mode: 'background' }, manifest, { background: true }).settings;
  const host = new PipelineHost({ packDir });
  try {
    const info = await host.ready;
    console.log(`pack ${info.pack} (licence ${info.licence.name}) on ${info.provider}`);
    const t0 = performance.now();
    const prepared = await host.prepare({ reference: copy(reference) }, settings);
    console.log(`reference context ${prepared.key.slice(0, 12)}… built in ${prepared.seconds.toFixed(2)} s`);
    for (const [i, sketch] of sketches.entries()) {
      const label = `frame ${i + 1}/${frames}`;
      const result = await host.frame(prepared.context, copy(sketch), settings, {
        onProgress: (p) => {
          if (p.stage === 'sample') process.stdout.write(`\r${label}: sampling step ${p.step}/${p.steps}   `);
        },
      });
      const path = join(outDir, 'outputs', `${String(i + 1).padStart(5, '0')}.png`);
      await writeFile(path, await encodePng(result.images[0]!));
      process.stdout.write(`\r${label}: done (${(result.timings.sample ?? 0).toFixed(2)} s sampling) → ${path}\n`);
    }
    // Background replacement: the same shot over a blue plate.
    const replaced = await host.colorize(
      { sketch: copy(sketches[0]!), reference: copy(reference), background },
      replacement,
    );
    const bgPath = join(outDir, 'outputs', 'background-replacement.png');
    await writeFile(bgPath, await encodePng(replaced.images[0]!));
    console.log(`background replacement → ${bgPath}`);
    console.log(`\n${frames} frames in ${((performance.now() - t0) / 1000).toFixed(1)} s. Inputs: ${join(outDir, 'inputs')}  Outputs: ${join(outDir, 'outputs')}`);
  } finally {
    await host.close();
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
