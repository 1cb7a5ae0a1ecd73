/**
 * The converter end to end on a tiny model of the published v2 structure: checkpoint, OpenCLIP
 * file and the auxiliary files (ISNet sketch mask, RMBG-2.0 reference mask, four line extractors) in the
 * official key layouts (random weights, perturbed everywhere) → pack (with `unet_inject`) → parity
 * with the PyTorch modules through onnxruntime-node → colorize in every mode and with every line
 * extractor. Needs Debian's python3-torch and python3-onnx (.ci/run installs them); without them
 * the suite fails, saying what to install.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { COLOURS, halfImage, referenceImage, sketchFrame } from '@celfarm/model-kit/samples';
import { encodePng } from '@celfarm/pipeline';
import { ModelPack, packFiles } from '@celfarm/pipeline/pack/loader';
import { packSchema } from '@celfarm/pipeline/pack/schema';
import { OrtRuntime } from '@celfarm/pipeline/ort/runtime';
import { decodeSafetensors } from '@celfarm/pipeline/safetensors';
import { checkParity, maxAbsDiff, parityError } from '../src/parity.ts';
import { formatParity, main, PARITY_TOLERANCE } from '../src/cli.ts';
import { CONVERT_DIR, python, pythonProblem, runConverter } from '../src/python.ts';

const ROOT = join(CONVERT_DIR, '..', '..');
const PIPELINE = join(ROOT, 'libs/pipeline/bin/celfarm-pipeline.mjs');
const sha256 = async (p: string) => createHash('sha256').update(await readFile(p)).digest('hex');

/** Runs a command to its end without blocking the event loop (so several can run at once). */
function run(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }, started?: (c: ChildProcess) => void) {
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    started?.(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
const EXTRACTORS = ['lineart_keras', 'lineart', 'lineart_denoise', 'lineart_sk'] as const;
const AUX_GRAPHS = ['sketch_mask', 'ref_mask', ...EXTRACTORS] as const;
const COLORIZER_GRAPHS = ['control_encoder', 'vae_encoder', 'vae_decoder', 'clip_image', 'bg_encoder', 'style_encoder', 'unet', 'unet_inject'] as const;
const UNET_INPUT_COUNT = 43;
const BANKS = Array.from({ length: 16 }, (_, i) => `bank_${i}`);
type AuxGraph = (typeof AUX_GRAPHS)[number];

describe('celfarm-convert: tiny v2 checkpoint → pack', { timeout: 900_000 }, () => {
  let dir: string;
  // make-tiny's files by graph; `rmbg` is the RMBG-2.0 (BiRefNet) stand-in the pack's ref_mask
  // comes from (`ref_mask`, the ISNet one, serves the Python suite).
  let src: { config: string; checkpoint: string; clip: string; rmbg: string } & Record<AuxGraph, string>;
  let pack: string;
  let parityFile: string;

  // The Python suite needs none of what `before` builds and Debian's torch runs on one thread, so
  // it runs beside the conversion and is awaited by the last test.
  let pythonSuite: ReturnType<typeof run> | undefined;
  let pythonChild: ChildProcess | undefined;

  before(async () => {
    const problem = pythonProblem();
    assert.equal(problem, null, `the converter's Python packages are missing: ${problem}`);
    pythonSuite = run(python(), ['-m', 'unittest', 'discover', '-s', 'tests', '-t', '.'], {
      cwd: CONVERT_DIR, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONWARNINGS: 'ignore' },
    }, (c) => (pythonChild = c));
    dir = await mkdtemp(join(tmpdir(), 'celfarm-convert-'));
    const tiny = await runConverter(['make-tiny', '--out', join(dir, 'src')]);
    assert.equal(tiny.status, 0, tiny.stderr);
    src = JSON.parse(tiny.stdout) as typeof src;
    pack = join(dir, 'packs', 'colorize-v2-tiny');
    // External data forced above 20 MB, so the UNet and both encoders take the >2 GB path of the
    // full model (weights in <graph>.onnx.data); masks and line extractors from their own files;
    // attention injection's unet_inject too.
    const converted = await runConverter([
      '--checkpoint', src.checkpoint, '--clip', src.clip, '--config', src.config, '--out', pack,
      '--id', 'colorize-v2-tiny', '--min-size', '64', '--default-size', '128', '--max-size', '256',
      '--external-data-over', '20000000', '--attention-injection', ...auxArgs(),
    ]);
    assert.equal(converted.status, 0, converted.stderr);
    for (const g of [...COLORIZER_GRAPHS, ...AUX_GRAPHS]) {
      assert.match(converted.stderr, new RegExp(`\\[\\d+/14\\] ${g}: [\\d.]+ MB in`), `progress line for ${g}`);
    }
    assert.match(converted.stderr, /\[7\/14\] unet: .*\n\[8\/14\] unet_inject: exporting/, 'unet_inject right after unet');
    await writeFile(join(dir, 'sketch.png'), await encodePng(sketchFrame(160, 128).image));
    await writeFile(join(dir, 'ref.png'), await encodePng(referenceImage(96, 96)));
    await writeFile(join(dir, 'bg.png'), await encodePng(halfImage(96, 80, COLOURS.grey, COLOURS.blue)));
  });
  after(async () => {
    if (pythonChild && pythonChild.exitCode === null && pythonChild.signalCode === null) pythonChild.kill();
    await pythonSuite?.catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** The file each auxiliary graph of the pack is converted from. */
  const auxFile = (g: AuxGraph) => (g === 'ref_mask' ? src.rmbg : src[g]);
  /** The converter's options for the auxiliary stand-ins written by make-tiny. */
  const auxArgs = () => [
    '--sketch-mask', src.sketch_mask, '--reference-mask', src.rmbg,
    ...EXTRACTORS.flatMap((n) => ['--line-extractor', `${n}=${src[n]}`]),
  ];

  it('writes a complete pack: licence, provenance with the sources’ sha256, sizes, external data', async () => {
    const manifest = packSchema.parse(JSON.parse(await readFile(join(pack, 'pack.json'), 'utf8')));
    assert.equal(manifest.prediction, 'v');
    assert.deepEqual(manifest.latent, { factor: 8, channels: 4, scale: 0.18215 });
    assert.deepEqual(manifest.size, { multiple: 64, min: 64, max: 256, default: 128 });
    assert.equal(manifest.licence.name, 'CC-BY-NC-SA-4.0');
    assert.equal(manifest.licence.commercialUse, false);
    assert.deepEqual(
      manifest.provenance?.sources.map((s) => [s.role, s.file, s.sha256]),
      [
        ['checkpoint', 'tiny-v2.safetensors', await sha256(src.checkpoint)],
        ['clip', 'tiny-clip.safetensors', await sha256(src.clip)],
        ...(await Promise.all(AUX_GRAPHS.map(async (g) => [g, basename(auxFile(g)), await sha256(auxFile(g))]))),
      ],
    );
    for (const g of [...AUX_GRAPHS, 'unet_inject' as const]) assert.equal(manifest.graphs[g]?.required, false, `${g} is optional`);
    for (const g of COLORIZER_GRAPHS.filter((n) => n !== 'unet_inject')) assert.equal(manifest.graphs[g]?.required, true, `${g} is required`);
    assert.deepEqual(manifest.inputs, { clip: 224, sketchMask: 1024, refMask: 1024, lineExtractor: 512, refMaskNetwork: 'rmbg' });
    assert.match(manifest.licence.text, /ref_mask from tiny-rmbg-model\.safetensors \(BiRefNet .*CC BY-NC 4\.0/);
    assert.deepEqual(manifest.defaults, {}, 'lineart_keras, the runtime default extractor, is in the pack');
    const auxGraphs = manifest.provenance?.config.auxGraphs as Record<string, { file: string }>;
    assert.deepEqual(Object.fromEntries(Object.entries(auxGraphs).map(([g, i]) => [g, i.file])), Object.fromEntries(AUX_GRAPHS.map((g) => [g, basename(auxFile(g))])));
    assert.equal(manifest.provenance?.converter, 'celfarm-convert@1.0.0');
    assert.equal(manifest.version, (await sha256(src.checkpoint)).slice(0, 12));
    for (const g of ['unet', 'unet_inject', 'bg_encoder', 'style_encoder']) {
      assert.deepEqual(manifest.graphs[g as 'unet']?.data?.map((d) => d.file), [`${g}.onnx.data`], `${g} keeps its weights outside the protobuf`);
    }
    assert.equal(manifest.graphs.vae_decoder?.data, undefined);
    const onDisk = (await readdir(pack)).filter((f) => f !== 'pack.json').sort();
    assert.deepEqual(onDisk, packFiles(manifest).sort(), 'every file listed, nothing else');
    assert.deepEqual((await readdir(join(dir, 'packs'))), ['colorize-v2-tiny'], 'no temporary folder left');
  });

  it('every graph equals its PyTorch module within 1e-4 through onnxruntime-node, in every UNet mode', async () => {
    parityFile = join(dir, 'parity.safetensors');
    const ref = await runConverter(['parity', '--checkpoint', src.checkpoint, '--clip', src.clip, '--config', src.config, '--out', parityFile,
      '--attention-injection', ...auxArgs()]);
    assert.equal(ref.status, 0, ref.stderr);
    const rows = await checkParity(pack, parityFile);
    const cases = new Set(rows.map((r) => `${r.graph}/${r.case}`));
    // unet_inject: each "-write" case is a write pass (one zero bank token per block, blend 1),
    // its reference the plain PyTorch UNet and the banks the official hook records; each "-read"
    // case takes those banks with mixed per-entry blends, its reference the official hook's read.
    for (const c of ['unet/vanilla', 'unet/style', 'unet/background', 'unet/full', 'unet/full-nolora', 'clip_image/default', 'vae_encoder/default',
      'vae_decoder/default', 'control_encoder/default', 'bg_encoder/default', 'style_encoder/default', 'sketch_mask/default', 'ref_mask/default',
      'unet_inject/full-write', 'unet_inject/full-read', 'unet_inject/vanilla-write', 'unet_inject/vanilla-read',
      ...EXTRACTORS.flatMap((e) => [`${e}/default`, `${e}/dynamic`])]) {
      assert.ok(cases.has(c), `parity case ${c}`);
    }
    const inject = rows.filter((r) => r.graph === 'unet_inject');
    assert.deepEqual(inject.filter((r) => r.case === 'full-read').map((r) => r.output), ['model_output', ...BANKS]);
    process.stdout.write(`${formatParity([...inject.filter((r) => r.output === 'model_output' || r.output === 'bank_0' || r.output === 'bank_15'),
      ...rows.filter((r) => r.graph === 'ref_mask')]).replace(/^/gm, '# ')}\n`);
    for (const r of rows) {
      assert.ok(parityError(r) <= PARITY_TOLERANCE, `${r.graph}/${r.case} ${r.output}: max |Δ| ${r.maxAbs} (unit ${r.unit})`);
      assert.ok(r.scale > 1e-2, `${r.graph}/${r.case} ${r.output} is not trivially zero (max ${r.scale})`);
    }
  });

  it('unet_inject through onnxruntime-node alone: a write pass gives unet\'s output, its banks drive the read pass', async () => {
    const { tensors } = decodeSafetensors(new Uint8Array(await readFile(parityFile)), 'parity');
    const io = (c: string, kind: 'in' | 'out') => Object.fromEntries(Object.entries(tensors)
      .filter(([k]) => k.startsWith(`unet_inject/${c}/${kind}/`)).map(([k, t]) => [k.split('/')[3]!, t]));
    const loaded = await ModelPack.load(pack, new OrtRuntime());
    try {
      const unet = await loaded.session('unet');
      const inject = await loaded.session('unet_inject');
      assert.deepEqual(inject.inputs.map((t) => t.name).slice(0, UNET_INPUT_COUNT), unet.inputs.map((t) => t.name));
      for (const c of ['full', 'vanilla']) {
        const writeIn = io(`${c}-write`, 'in');
        const write = await inject.run(writeIn);
        const plain = await unet.run(Object.fromEntries(unet.inputs.map((t) => [t.name, writeIn[t.name]!])));
        const dPlain = maxAbsDiff(write.model_output!, plain.model_output!);
        assert.ok(dPlain <= PARITY_TOLERANCE, `${c}: write pass vs unet ${dPlain}`);
        const readIn = io(`${c}-read`, 'in');
        const want = io(`${c}-read`, 'out');
        // The read pass on the banks ORT wrote, as the runtime chains them.
        const read = await inject.run({ ...readIn, ...Object.fromEntries(BANKS.map((b, i) => [`bank_in_${i}`, write[b]!])) });
        const dRead = maxAbsDiff(read.model_output!, want.model_output!);
        assert.ok(dRead <= PARITY_TOLERANCE, `${c}: chained read pass vs the hook ${dRead}`);
        process.stdout.write(`# unet_inject/${c}: write vs unet ${dPlain.toExponential(2)}, chained read vs hook ${dRead.toExponential(2)}\n`);
      }
    } finally {
      await loaded.dispose();
    }
  });

  it('loads through the pipeline: every session passes the contract check', async () => {
    const loaded = await ModelPack.load(pack, new OrtRuntime());
    try {
      await loaded.openAll();
    } finally {
      await loaded.dispose();
    }
  });

  it('colorizes in every mode through celfarm-pipeline, deterministically', async () => {
    const colorize = (mode: string, out: string) =>
      spawnSync(process.execPath, [PIPELINE, 'colorize', '--pack', pack, '--sketch', 'sketch.png', '--reference', 'ref.png',
        '--background', 'bg.png', '--mode', mode, '--steps', '3', '--seed', '5', '--out', out, '--quiet'], { cwd: dir, encoding: 'utf8' });
    const digests = new Map<string, string>();
    for (const mode of ['vanilla', 'style', 'background', 'full']) {
      const r = colorize(mode, `${mode}.png`);
      assert.equal(r.status, 0, `${mode}: ${r.stderr}`);
      // The output takes the sketch's size (160×128) fitted to the pack's multiple of 64.
      assert.match(r.stdout, new RegExp(`${mode}\\.png \\(192×128, seed 5\\)`));
      digests.set(mode, await sha256(join(dir, `${mode}.png`)));
    }
    assert.equal(new Set(digests.values()).size, 4, 'each mode gives its own picture');
    const again = colorize('full', 'full-again.png');
    assert.equal(again.status, 0, again.stderr);
    assert.equal(await sha256(join(dir, 'full-again.png')), digests.get('full'), 'same seed, same bytes');
  });

  it('extracts lines with every line extractor of the pack through celfarm-pipeline', async () => {
    // The four runs at once: most of each is loading the pack, which the two cores share well.
    const results = await Promise.all(EXTRACTORS.map((extractor) =>
      run(process.execPath, [PIPELINE, 'colorize', '--pack', pack, '--sketch', 'sketch.png', '--reference', 'ref.png',
        '--preprocessor', 'extract', '--line-extractor', extractor, '--steps', '1', '--width', '64', '--height', '64', '--seed', '5',
        '--threads', '1', '--out', `extract-${extractor}.png`, '--quiet'], { cwd: dir })));
    const digests = new Set<string>();
    for (const [i, r] of results.entries()) {
      assert.equal(r.status, 0, `${EXTRACTORS[i]}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`extract-${EXTRACTORS[i]}\\.png \\(64×64, seed 5\\)`));
      digests.add(await sha256(join(dir, `extract-${EXTRACTORS[i]}.png`)));
    }
    assert.equal(digests.size, EXTRACTORS.length, 'each extractor gives its own sketch');
  });

  it('the converted RMBG-2.0 ref_mask whitens the background through celfarm-pipeline', async () => {
    // The runtime prepares the image as RMBG-2.0 expects (pack.json refMaskNetwork 'rmbg') and
    // runs the graph at 1024² on the decoded frame; with it the picture changes, twice the same.
    const colorize = (out: string, ...extra: string[]) =>
      run(process.execPath, [PIPELINE, 'colorize', '--pack', pack, '--sketch', 'sketch.png', '--reference', 'ref.png', '--steps', '1',
        '--width', '64', '--height', '64', '--seed', '5', '--threads', '1', '--out', out, '--quiet', ...extra], { cwd: dir });
    const [plain, removed, again] = await Promise.all([colorize('rmbg-plain.png'), colorize('rmbg-removed.png', '--remove-background'),
      colorize('rmbg-again.png', '--remove-background')]);
    for (const r of [plain, removed, again]) assert.equal(r.status, 0, r.stderr);
    const digest = (f: string) => sha256(join(dir, f));
    assert.notEqual(await digest('rmbg-removed.png'), await digest('rmbg-plain.png'), 'the mask whitens part of the frame');
    assert.equal(await digest('rmbg-again.png'), await digest('rmbg-removed.png'));
  });

  it('npm run convert refuses a wrong file with one line naming it, and writes nothing', async () => {
    const vaeOnly = join(dir, 'not-a-colorizer.safetensors');
    await writeFile(vaeOnly, (await readFile(src.clip)));
    const out = join(dir, 'refused');
    const run = async (args: string[]) => {
      const errors: string[] = [];
      const write = process.stderr.write.bind(process.stderr);
      process.stderr.write = ((chunk: string) => (errors.push(String(chunk)), true)) as typeof process.stderr.write;
      try {
        return { code: await main(args, dir), text: errors.join('') };
      } finally {
        process.stderr.write = write;
      }
    };
    const wrongCheckpoint = await run(['--checkpoint', vaeOnly, '--clip', src.clip, '--config', src.config, '--out', out, '--verify']);
    assert.equal(wrongCheckpoint.code, 2);
    assert.match(wrongCheckpoint.text, /^error: checkpoint .*not-a-colorizer\.safetensors: no colorizer UNet .*looks like an OpenCLIP model/m);
    assert.doesNotMatch(wrongCheckpoint.text, /Traceback/);
    // A sketchKeras file given as lineart_sk, its path relative to where npm runs.
    const wrongExtractor = await run(['--checkpoint', src.checkpoint, '--clip', src.clip, '--config', src.config, '--out', out,
      '--line-extractor', `lineart_sk=${join('src', basename(src.lineart_keras))}`, '--verify']);
    assert.equal(wrongExtractor.code, 2);
    const line = `error: --line-extractor lineart_sk ${src.lineart_keras}, component lineart_sk: `;
    assert.ok(wrongExtractor.text.split('\n').some((l) => l.startsWith(line) && l.includes('looks like the lineart_keras extractor')), wrongExtractor.text);
    assert.doesNotMatch(wrongExtractor.text, /Traceback/);
    await assert.rejects(stat(out));
  });

  it('the Python suite passes (architecture at full size, refusals, knobs, layouts, auxiliary networks)', async () => {
    const r = await pythonSuite!;
    assert.equal(r.status, 0, r.stderr.slice(-3000));
    const ran = /Ran (\d+) tests/.exec(r.stderr);
    assert.ok(ran && Number(ran[1]) >= 50, `ran ${ran?.[1]} Python tests`);
    assert.match(r.stderr, /\nOK/);
  });
});
