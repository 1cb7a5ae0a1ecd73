/**
 * The `celfarm` CLI as a user runs it (a child process): against a real farm for shots, and
 * against a small stub of the API for keys, webhooks, auth errors and 429/503 retries.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { until } from '@celfarm/services';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { encodePng } from '@celfarm/pipeline/image/codec';
import { createApiKey, ROOT, startFarm, whileHeld, type Farm } from '../../../test/harness.ts';
import type { FrameView, ShotView } from '../src/api.ts';
import { main } from '../src/cli.ts';
import { readConfig } from '../src/config.ts';
import { defaultIdempotencyKey, type ShotInputs } from '../src/inputs.ts';

const BIN = join(ROOT, 'apps/cli/bin/celfarm.mjs');
const SIZE = 128;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI asynchronously (the stub API answers from this process's event loop). */
function celfarm(args: string[], env: Record<string, string | undefined> = {}, cwd = ROOT, onStderr?: (all: string) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const clean = { ...process.env };
    delete clean.CELFARM_API;
    delete clean.CELFARM_KEY;
    delete clean.CELFARM_PROJECT;
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      onStderr?.(stderr);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The same CLI in this process (for the stub API: no process start-up per call). */
async function celfarmHere(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await main(['node', 'celfarm', ...args], readConfig(env), { out: (t) => void (stdout += t), err: (t) => void (stderr += t) });
  return { code, stdout, stderr };
}

const pngSize = (b: Buffer): [number, number] => {
  assert.deepEqual([...b.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG signature');
  return [b.readUInt32BE(16), b.readUInt32BE(20)];
};

const noStack = (r: Run) => assert.doesNotMatch(r.stderr, /^\s+at /m, `no stack trace:\n${r.stderr}`);

describe('celfarm CLI against a farm', () => {
  let farm: Farm;
  let dir: string;
  let env: Record<string, string>;
  const knobs = ['--steps', '4', '--width', String(SIZE), '--height', String(SIZE), '--seed', '3'];

  before(async () => {
    [farm, dir] = await Promise.all([startFarm({ workers: 1, env: { WEBHOOK_ALLOW_HOSTS: '127.0.0.1' } }), mkdtemp(join(tmpdir(), 'celfarm-cli-'))]);
    env = { CELFARM_API: farm.apiUrl, CELFARM_KEY: await createApiKey(farm) };
    await mkdir(join(dir, 'sc010'));
    // Names sort naturally: f2 before f10; the text file and the reference in the folder are skipped.
    await writeFile(join(dir, 'sc010', 'f2.png'), await encodePng(sketchFrame(SIZE, SIZE, 0, 2).image));
    await writeFile(join(dir, 'sc010', 'f10.png'), await encodePng(sketchFrame(SIZE, SIZE, 1, 2).image));
    await writeFile(join(dir, 'sc010', 'notes.txt'), 'not a frame');
    await writeFile(join(dir, 'sc010', 'ref.png'), await encodePng(halfImage(SIZE, SIZE, COLOURS.red, COLOURS.grey)));
    // A studio's render folder: frames named after the shot, the reference kept elsewhere.
    await mkdir(join(dir, 'renders', 'take2'), { recursive: true });
    await writeFile(join(dir, 'renders', 'take2', 'sh010_0001.png'), await encodePng(sketchFrame(SIZE, SIZE, 0, 2).image));
    await writeFile(join(dir, 'renders', 'take2', 'sh010_0002.png'), await encodePng(sketchFrame(SIZE, SIZE, 1, 2).image));
    await mkdir(join(dir, 'broken'));
    await writeFile(join(dir, 'broken', '00001.png'), await encodePng(sketchFrame(SIZE, SIZE, 0, 2).image));
    await writeFile(join(dir, 'broken', '00002.png'), Buffer.from('\x89PNG\r\n\x1a\nnot really a png'));
  });
  after(async () => {
    await farm?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  let shotId = '';

  it('submits a folder, waits with progress and downloads the outputs', async () => {
    const out = join(dir, 'out');
    const r = await celfarm(['submit', join(dir, 'sc010'), '--reference', join(dir, 'sc010', 'ref.png'), ...knobs, '--mode', 'full', '--wait', '--out', out], env);
    assert.equal(r.code, 0, r.stderr);
    noStack(r);
    const lines = r.stdout.trim().split('\n');
    shotId = lines[0]!;
    assert.match(shotId, /^[a-z0-9]+$/);
    // Outputs are named after the input frames, in frame order; the shot after its folder.
    assert.deepEqual(lines.slice(1), [join(out, 'f2.png'), join(out, 'f10.png')]);
    assert.match(r.stderr, new RegExp(`^submitted shot ${shotId} "sc010": 2 frames, project demo, seed 3$`, 'm'));
    assert.doesNotMatch(r.stderr, /^warning/m, 'nothing adjusted at the frames\' own size');
    assert.match(r.stderr, /completed: 2\/2 frames/);
    assert.deepEqual((await readdir(out)).sort(), ['f10.png', 'f2.png']);
    for (const f of ['f2.png', 'f10.png']) assert.deepEqual(pngSize(await readFile(join(out, f))), [SIZE, SIZE]);
  });

  it('status --json parses; status prints a frame table; list and wait find the shot', async () => {
    const s = await celfarm(['status', shotId, '--json'], env);
    assert.equal(s.code, 0, s.stderr);
    // The view and its frames (read from the shot's frame pages).
    const view = JSON.parse(s.stdout) as ShotView & { settings: Record<string, unknown>; frames: FrameView[] };
    assert.equal(view.id, shotId);
    assert.equal(view.state, 'completed');
    assert.deepEqual(view.frames.map((f) => [f.frame, f.state, f.seed]), [[1, 'completed', 3], [2, 'completed', 4]]);
    assert.equal(view.settings.mode, 'full');
    assert.match(view.frames[0]!.input, /00001\.png$/);
    assert.deepEqual(view.frames.map((f) => f.fileName), ['f2.png', 'f10.png']);
    assert.equal(view.name, 'sc010');

    const table = await celfarm(['status', shotId], env);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^name\s+sc010$/m);
    assert.match(table.stdout, /^size\s+128×128, as requested \(--width\/--height\)$/m);
    assert.match(table.stdout, /^frame\s+file\s+state\s+stage\s+step/m);
    assert.match(table.stdout, /^2\s+f10\.png\s+completed\s/m);

    const list = await celfarm(['list', '--state', 'completed', '--json'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.ok((JSON.parse(list.stdout) as { shots: { id: string }[] }).shots.some((x) => x.id === shotId));
    const plain = await celfarm(['list'], env);
    assert.match(plain.stdout, new RegExp(`^${shotId}\\s+sc010\\s+completed\\s+demo\\s+2/2`, 'm'));

    const wait = await celfarm(['wait', shotId, '--json'], env);
    assert.equal(wait.code, 0, wait.stderr);
    assert.equal((JSON.parse(wait.stdout) as ShotView).state, 'completed');

    const out = join(dir, 'again');
    const dl = await celfarm(['download', shotId, '--out', out], env);
    assert.equal(dl.code, 0, dl.stderr);
    assert.deepEqual((await readdir(out)).sort(), ['f10.png', 'f2.png']);
  });

  it('shows shot QA: scores, needs-review markers and the summary; filters the frames; approve clears the marker', async () => {
    // The analytic pack inks whole latent cells: by the default thresholds every frame is flagged for lineFidelity.
    const st = await celfarm(['status', shotId], env);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /^qa\s+flagged 2, needs review 2; flagged when palette > 6, flickerMean > 2\.5, flickerShare > 0\.05, lineFidelity < 0\.8$/m);
    assert.match(st.stdout, /^frame\s+file\s+state\s+stage\s+step\s+attempts\s+worker\s+seed\s+palette\s+flicker\s+flicker%\s+lines%\s+review\s+output \/ error$/m);
    // Frame 1 has no previous frame: its flicker cannot be scored. Its line fidelity is past the threshold: `!`.
    assert.match(st.stdout, /^1\s+f2\.png\s+completed\s.*\s3\s+\d+\.\d\d!?\s+n\/a\s+n\/a\s+\d+(\.\d)?!\s+needs review\s+\S+\/f2\.png$/m);
    assert.match(st.stdout, /^2\s+f10\.png\s+completed\s.*\s4\s+(\S+\s+){3}\d+(\.\d)?!\s+needs review\s/m);
    const view = JSON.parse((await celfarm(['status', shotId, '--json'], env)).stdout) as ShotView & { frames: FrameView[] };
    assert.deepEqual([view.flagged, view.needsReview], [2, 2]);
    assert.deepEqual(view.frames.map((f) => [f.needsReview, f.qa?.flagged.includes('lineFidelity')]), [[true, true], [true, true]]);
    const shown = Number(/^1\s+f2\.png\s.*\s(\d+(?:\.\d)?)!\s+needs review/m.exec(st.stdout)?.[1]);
    assert.equal(shown, Math.round(view.frames[0]!.qa!.scores.lineFidelity! * 1000) / 10, 'line fidelity as a percentage');

    const approve = await celfarm(['approve', shotId, '2'], env);
    assert.equal(approve.code, 0, approve.stderr);
    assert.match(approve.stdout, /^frame 2 f10\.png approved \(flagged .*lineFidelity.*\)$/m);
    assert.match(approve.stderr, new RegExp(`^shot ${shotId}: flagged 2, needs review 1; `, 'm'));
    const needed = await celfarm(['frames', shotId, '--needs-review'], env);
    assert.equal(needed.code, 0, needed.stderr);
    assert.match(needed.stdout, /^1\s+f2\.png\s+completed\s.*needs review/m);
    assert.doesNotMatch(needed.stdout, /^2\s/m);
    const approved = JSON.parse((await celfarm(['frames', shotId, '--approved', '--json'], env)).stdout) as FrameView[];
    assert.deepEqual(approved.map((f) => [f.frame, f.needsReview, f.review?.state]), [[2, false, 'approved']]);
    assert.match(approved[0]!.review!.by ?? '', /^key_/);
    const flagged = await celfarm(['frames', shotId, '--flagged'], env);
    assert.match(flagged.stdout, /^2\s+f10\.png\s+completed\s.*!\s+approved\s/m, 'approved, its flags stay');
    assert.match((await celfarm(['status', shotId], env)).stdout, /^qa\s+flagged 2, needs review 1;/m);
    // Idempotent; a frame the shot does not have is refused before anything is approved.
    assert.equal((await celfarm(['approve', shotId, '2'], env)).code, 0);
    const outside = await celfarm(['approve', shotId, '1-3'], env);
    assert.equal(outside.code, 2);
    assert.match(outside.stderr, new RegExp(`^error \\[INVALID_REQUEST\\] \\(frames\\): no frame 3: shot ${shotId} has 2$`, 'm'));
    assert.equal((JSON.parse((await celfarm(['status', shotId, '--json'], env)).stdout) as ShotView).needsReview, 1);
  });

  it('rerender --seed renders a frame again with that seed once the shot has finished, keeping its earlier take', async () => {
    // One re-render at a time: while the shot runs again (its worker paused here), another is refused.
    await whileHeld([farm.workers[0]!], async () => {
      const first = await celfarm(['rerender', shotId, '1', '--seed', '77'], env);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(first.stdout, `${shotId}\n`);
      assert.match(first.stderr, new RegExp(`^shot ${shotId} running \\(round 1\\): frame 1 f2\\.png renders again with seed 77; its earlier take is kept$`, 'm'));
      const busy = await celfarm(['rerender', shotId, '2'], env);
      assert.equal(busy.code, 2);
      assert.match(busy.stderr, /^error \[STATE_CONFLICT\]: shot \S+ is running; /m);
      noStack(busy);
    });
    const waited = await celfarm(['wait', shotId, '--quiet'], env);
    assert.equal(waited.code, 0, waited.stderr);
    const frames = JSON.parse((await celfarm(['frames', shotId, '--json'], env)).stdout) as FrameView[];
    const f1 = frames[0]!;
    assert.deepEqual([f1.state, f1.seed, f1.takes?.map((t) => [t.round, t.seed])], ['completed', 77, [[0, 3]]]);
    assert.deepEqual([f1.needsReview, f1.review], [true, undefined], 'the new take is scored, and flagged, again');
    assert.equal(frames[1]!.review?.state, 'approved', 'the approval of another frame stays');
    const table = await celfarm(['frames', shotId], env);
    assert.match(table.stdout, /^1\s+f2\.png\s+completed\s.*\s77\s.*needs review\s+\S+\/f2\.png$/m);
    assert.match(table.stdout, /^ {2}earlier take \(round 0\): seed 3, palette \d+\.\d\d!?, flicker n\/a, flicker% n\/a, lines% \d+(\.\d)?!, flagged, replaced \S+, \S+\/takes\/f2\.r0\.png$/m);
    assert.match((await celfarm(['status', shotId], env)).stdout, /^state\s+completed \(round 1\)$/m);

    // --wait follows the shot and prints the frame with its takes.
    const again = await celfarm(['rerender', shotId, '1', '--seed', '78', '--wait', '--quiet'], env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^1\s+f2\.png\s+completed\s.*\s78\s/m);
    assert.deepEqual(again.stdout.match(/^ {2}earlier take \(round (\d)\): seed (\d+)/gm), ['  earlier take (round 0): seed 3', '  earlier take (round 1): seed 77']);
    const missing = await celfarm(['rerender', shotId, '9'], env);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^error \[NOT_FOUND\]/m);
  });

  it('qa thresholds --set and --clear round-trip; submit --qa-threshold judges its shot by its own', async () => {
    // A project of its own, so the other tests' shots keep the defaults.
    const qaEnv = { ...env, CELFARM_KEY: await createApiKey(farm, 'qa') };
    const shown = await celfarm(['qa', 'thresholds'], qaEnv);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^score\s+project\s+effective\s+flagged$/m);
    assert.match(shown.stdout, /^palette\s+-\s+6\s+above \(ΔE00 0–100\)$/m);
    assert.match(shown.stdout, /^lineFidelity\s+-\s+0\.8\s+below \(a share 0–1\)$/m);
    const set = await celfarm(['qa', 'thresholds', '--set', 'palette=8,lineFidelity=0.5', '--set', 'flickerMean=3'], qaEnv);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /^palette\s+8\s+8\s+above/m);
    assert.match(set.stdout, /^flickerShare\s+-\s+0\.05\s+above/m);
    const read = JSON.parse((await celfarm(['qa', 'thresholds', '--json'], qaEnv)).stdout) as { project: object; effective: object };
    assert.deepEqual(read, { project: { palette: 8, flickerMean: 3, lineFidelity: 0.5 }, effective: { palette: 8, flickerMean: 3, flickerShare: 0.05, lineFidelity: 0.5 } });

    // The submit's thresholds over the project's, over the defaults: nothing can be past these.
    const folder = join(dir, 'sc010');
    const r = await celfarm(
      ['submit', folder, '--reference', join(folder, 'ref.png'), ...knobs, '--qa-threshold', 'palette=100,lineFidelity=0', '--qa-threshold', 'flickerShare=1', '--wait', '--quiet'],
      qaEnv,
    );
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    const st = await celfarm(['status', id], qaEnv);
    assert.match(st.stdout, /^qa\s+flagged 0, needs review 0; flagged when palette > 100, flickerMean > 3, flickerShare > 1, lineFidelity < 0$/m);
    assert.doesNotMatch(st.stdout, /^\d+\s.*(!|needs review)/m, 'no score past its threshold');
    // Another shot with the same frames but other thresholds is another shot (the idempotency key covers them).
    const other = await celfarm(['submit', folder, '--reference', join(folder, 'ref.png'), ...knobs, '--qa-threshold', 'palette=99'], qaEnv);
    assert.equal(other.code, 0, other.stderr);
    assert.notEqual(other.stdout.trim(), id);
    assert.equal((await celfarm(['wait', other.stdout.trim(), '--quiet'], qaEnv)).code, 0);

    const cleared = await celfarm(['qa', 'thresholds', '--clear', '--json'], qaEnv);
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.deepEqual(JSON.parse(cleared.stdout), { project: {}, effective: { palette: 6, flickerMean: 2.5, flickerShare: 0.05, lineFidelity: 0.8 } });
    // Setting them takes an admin key.
    const reader = { ...env, CELFARM_KEY: await createApiKey(farm, 'qa', ['read']) };
    const refused = await celfarm(['qa', 'thresholds', '--set', 'palette=8'], reader);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /^error \[FORBIDDEN\]/m);
  });

  it('names a shot with studio ids, keeps its frames\' names, warns of a fitted size; list --search finds it', async () => {
    const folder = join(dir, 'renders', 'take2');
    const args = ['submit', folder, '--reference', join(dir, 'sc010', 'ref.png'), '--name', 'Opening pan', '--show', 'ABC', '--sequence', 'sq01'];
    // 130 is no multiple of the pack's: it is fitted, with a warning, and still exits 0.
    const fitted = [...args, '--steps', '4', '--width', String(SIZE + 2), '--height', String(SIZE), '--seed', '5'];
    const out = join(dir, 'take2-out');
    const r = await celfarm([...fitted, '--wait', '--out', out], env);
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.split('\n')[0]!;
    assert.match(r.stderr, new RegExp(`^submitted shot ${id} "Opening pan" \\(ABC · sq01\\): 2 frames, project demo, seed 5$`, 'm'));
    assert.match(r.stderr, new RegExp(`^warning \\(settings\\.width\\): width ${SIZE + 2} is not a multiple of \\d+; rendering ${SIZE}$`, 'm'));
    assert.deepEqual(r.stdout.trim().split('\n').slice(1), [join(out, 'sh010_0001.png'), join(out, 'sh010_0002.png')]);
    assert.deepEqual((await readdir(out)).sort(), ['sh010_0001.png', 'sh010_0002.png']);

    const st = await celfarm(['show', id], env);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /^name\s+Opening pan$/m);
    assert.match(st.stdout, /^studio\s+show ABC · sequence sq01$/m);
    assert.match(st.stdout, /^size\s+128×128, as requested/m);
    const json = JSON.parse((await celfarm(['status', id, '--json'], env)).stdout) as ShotView & { frames: FrameView[] };
    assert.deepEqual([json.name, json.externalIds, json.warnings.map((w) => w.code)], ['Opening pan', { show: 'ABC', sequence: 'sq01' }, ['SIZE_FITTED']]);
    assert.match(st.stdout, /^warning\s+\(settings\.width\): width 130 /m);
    assert.match(st.stdout, /^1\s+sh010_0001\.png\s+completed\s/m);
    assert.match(st.stdout, /^2\s+sh010_0002\.png\s+completed\s.*\/sh010_0002\.png$/m);
    const dl = await celfarm(['download', id, '--out', join(dir, 'take2-again')], env);
    assert.equal(dl.code, 0, dl.stderr);
    assert.deepEqual((await readdir(join(dir, 'take2-again'))).sort(), ['sh010_0001.png', 'sh010_0002.png']);

    const byName = await celfarm(['list', '--search', 'opening'], env);
    assert.equal(byName.code, 0, byName.stderr);
    assert.match(byName.stdout, new RegExp(`^${id}\\s+Opening pan\\s+completed\\s+demo\\s+2/2`, 'm'));
    assert.doesNotMatch(byName.stdout, new RegExp(shotId));
    const byShow = await celfarm(['list', '-q', 'abc', '--json'], env);
    assert.deepEqual((JSON.parse(byShow.stdout) as { shots: { id: string }[] }).shots.map((x) => x.id), [id]);
    const none = await celfarm(['list', '-q', 'no-such-show'], env);
    assert.equal(none.stdout, '(no shots)\n');

    // --strict: the same command finds the same shot (idempotency), and its warnings exit 3.
    const again = await celfarm([...fitted, '--strict'], env);
    assert.equal(again.code, 3, again.stderr);
    assert.equal(again.stdout.trim(), id);
    assert.match(again.stderr, /^warning \(settings\.width\)/m);
    // A new shot is not followed under --strict (even with --wait); it renders unless cancelled.
    const fresh = await celfarm([...fitted, '--strict', '--wait', '--no-idempotency-key'], env);
    assert.equal(fresh.code, 3, fresh.stderr);
    assert.match(fresh.stderr, /^--strict: 1 settings warning; exit 3 without following shot /m);
    assert.doesNotMatch(fresh.stderr, /completed: 2\/2/);
    assert.equal((await celfarm(['wait', fresh.stdout.trim(), '--quiet'], env)).code, 0);
    // Without warnings --strict changes nothing.
    const clean = await celfarm([...args, '--steps', '4', '--seed', '5', '--strict'], env);
    assert.equal(clean.code, 0, clean.stderr);
    assert.doesNotMatch(clean.stderr, /^warning/m);
    assert.equal((await celfarm(['wait', clean.stdout.trim(), '--quiet'], env)).code, 0);
    assert.match((await celfarm(['status', clean.stdout.trim()], env)).stdout, /^size\s+128×128, from the frames' size$/m);
  });

  it('bad --show, --name or --search values fail before anything is sent, naming the flag', async () => {
    // Nothing listens on port 9: a request would exit 1 (UNREACHABLE), not 2.
    const offline = { CELFARM_API: 'http://127.0.0.1:9', CELFARM_KEY: 'cf_unused' };
    const base = ['submit', join(dir, 'sc010'), '--reference', join(dir, 'sc010', 'ref.png')];
    const show = await celfarmHere([...base, '--show', 'A B'], offline);
    assert.equal(show.code, 2, show.stderr);
    assert.match(show.stderr, /^error \[INVALID_REQUEST\] \(--show\): "A B": 1–64 letters, digits/m);
    const name = await celfarmHere([...base, '--name', 'x'.repeat(201)], offline);
    assert.equal(name.code, 2, name.stderr);
    assert.match(name.stderr, /^error \[INVALID_REQUEST\] \(--name\): .*at most 200 characters/m);
    const search = await celfarmHere(['list', '-q', '  '], offline);
    assert.equal(search.code, 2, search.stderr);
    assert.match(search.stderr, /^error \[INVALID_REQUEST\] \(--search\): .*must not be empty/m);
  });

  it('submit --shared-noise --palette-lock --reference-chain asks for consistency; status says so', async () => {
    const folder = join(dir, 'sc010');
    const r = await celfarm(
      ['submit', folder, '--reference', join(folder, 'ref.png'), ...knobs, '--shared-noise', '--palette-lock', 'reference', '--reference-chain', 'approved', '--wait', '--quiet'],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    const st = await celfarm(['status', id, '--json'], env);
    const view = JSON.parse(st.stdout) as { seed: number; consistency?: object };
    assert.deepEqual(view.consistency, { sharedNoise: true, paletteLock: 'reference', referenceChain: 'approved' });
    const text = await celfarm(['status', id], env);
    assert.match(text.stdout, /^keep\s+shared noise, palette lock reference, reference chain approved$/m);
    const frames = JSON.parse((await celfarm(['frames', id, '--json'], env)).stdout) as { seed: number }[] | { frames: { seed: number }[] };
    const list = Array.isArray(frames) ? frames : frames.frames;
    assert.ok(list.length > 1 && list.every((f) => f.seed === view.seed), 'every frame from the shot seed');
    const bad = await celfarmHere(['submit', folder, '--reference', join(folder, 'ref.png'), '--palette-lock', 'always'], { CELFARM_API: 'http://127.0.0.1:9', CELFARM_KEY: 'cf_unused' });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--palette-lock.*always.*(off, reference, approved)/s);
  });

  it('bad --qa-threshold, --set, --seed or frame values fail before anything is sent, naming them', async () => {
    const offline = { CELFARM_API: 'http://127.0.0.1:9', CELFARM_KEY: 'cf_unused' };
    const base = ['submit', join(dir, 'sc010'), '--reference', join(dir, 'sc010', 'ref.png')];
    const range = await celfarmHere([...base, '--qa-threshold', 'palette=8,lineFidelity=2'], offline);
    assert.equal(range.code, 2, range.stderr);
    assert.match(range.stderr, /^error \[INVALID_REQUEST\] \(--qa-threshold\): lineFidelity=2: must be a share 0–1$/m);
    const unknown = await celfarmHere([...base, '--qa-threshold', 'hue=3'], offline);
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(unknown.stderr, /^error \[INVALID_REQUEST\] \(--qa-threshold\): "hue": unknown score; one of palette, flickerMean, flickerShare, lineFidelity$/m);
    const form = await celfarmHere([...base, '--qa-threshold', 'palette'], offline);
    assert.match(form.stderr, /^error \[INVALID_REQUEST\] \(--qa-threshold\): "palette": expected name=value/m);
    const set = await celfarmHere(['qa', 'thresholds', '--set', 'palette=-1'], offline);
    assert.equal(set.code, 2, set.stderr);
    assert.match(set.stderr, /^error \[INVALID_REQUEST\] \(--set\): palette=-1: must be ΔE00 0–100$/m);
    const both = await celfarmHere(['qa', 'thresholds', '--set', 'palette=8', '--clear'], offline);
    assert.equal(both.code, 2);
    const seed = await celfarmHere(['rerender', 'sh_1', '1', '--seed', '-5'], offline);
    assert.equal(seed.code, 2, seed.stderr);
    assert.match(seed.stderr, /^error \[INVALID_REQUEST\] \(--seed\): -5: a seed is 0–\d+$/m);
    const frame = await celfarmHere(['approve', 'sh_1', '2', 'x'], offline);
    assert.equal(frame.code, 2, frame.stderr);
    assert.match(frame.stderr, /^error \[INVALID_REQUEST\] \(frames\): "x" is not a frame number/m);
    const filters = await celfarmHere(['frames', 'sh_1', '--needs-review', '--approved'], offline);
    assert.equal(filters.code, 2);
  });

  it('a repeated submit without an explicit key returns the same shot', async () => {
    const args = ['submit', join(dir, 'sc010'), '--reference', join(dir, 'sc010', 'ref.png'), ...knobs, '--mode', 'full'];
    const again = await celfarm(args, env);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout.trim(), shotId);
    assert.match(again.stderr, /already submitted with idempotency key cli-/);
    // Other settings make another shot; --no-idempotency-key always does.
    const other = await celfarm([...args, '--steps', '5', '--json'], env);
    assert.equal(other.code, 0, other.stderr);
    const otherId = (JSON.parse(other.stdout) as ShotView).id;
    assert.notEqual(otherId, shotId);
    const fresh = await celfarm([...args, '--no-idempotency-key'], env);
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.notEqual(fresh.stdout.trim(), shotId);
    const wait = await celfarm(['wait', otherId, fresh.stdout.trim(), '--quiet'], env);
    assert.equal(wait.code, 0, wait.stderr);
  });

  it('a bad knob exits 2 naming the field, before anything is sent', async () => {
    const base = ['submit', join(dir, 'sc010'), '--reference', join(dir, 'sc010', 'ref.png')];
    const steps = await celfarm([...base, '--steps', '0'], env);
    assert.equal(steps.code, 2);
    assert.match(steps.stderr, /^error \[INVALID_KNOB\] \(settings\.steps\): /m);
    noStack(steps);
    const mode = await celfarm([...base, '--mode', 'sepia'], env);
    assert.equal(mode.code, 2);
    assert.match(mode.stderr, /\[UNKNOWN_MODE\] \(settings\.mode\)/);
    const unknown = await celfarm([...base, '--settings', '{"colour": 1}'], env);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /\(settings\.colour\)/);
    const notNumber = await celfarm([...base, '--guidance-scale', 'lots'], env);
    assert.equal(notNumber.code, 2);
    assert.match(notNumber.stderr, /--guidance-scale/);
  });

  it('API errors exit 2 with code and field, no stack trace', async () => {
    const missing = await celfarm(['status', 'no-such-shot'], env);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^error \[NOT_FOUND\]: shot no-such-shot not found$/m);
    noStack(missing);
    const cancel = await celfarm(['cancel', 'no-such-shot'], env);
    assert.equal(cancel.code, 2);
    const corrupt = await celfarm(['submit', join(dir, 'broken'), '--reference', join(dir, 'sc010', 'ref.png'), ...knobs], env);
    assert.equal(corrupt.code, 2);
    // The API's message is printed as it is: it names the file.
    assert.match(corrupt.stderr, /^error \[INVALID_IMAGE\] \(frames\[1\]\): .*00002\.png/m);
    noStack(corrupt);
    const noRef = await celfarm(['submit', join(dir, 'sc010')], env);
    assert.equal(noRef.code, 2);
    assert.match(noRef.stderr, /\[MISSING_INPUT\] \(reference\)/);
  });

  it('wait exits 1 when the shot it follows is cancelled', async () => {
    // The worker is paused so the shot cannot finish before the cancel lands.
    await whileHeld([farm.workers[0]!], async () => {
      const s = await celfarm(['submit', join(dir, 'sc010'), '--reference', join(dir, 'sc010', 'ref.png'), ...knobs, '--no-idempotency-key', '--json'], env);
      assert.equal(s.code, 0, s.stderr);
      const id = (JSON.parse(s.stdout) as ShotView).id;
      // Cancelled once `wait` has reported the queued shot (its first poll), however slowly it starts.
      let waitSaid = '';
      const waiting = celfarm(['wait', id, '--poll', '0.1'], env, ROOT, (all) => (waitSaid = all));
      await until('wait reported the queued shot', () => waitSaid.includes(`shot ${id} queued: 0/2 frames`), { timeoutMs: 30_000 });
      const c = await celfarm(['cancel', id], env);
      assert.equal(c.code, 0, c.stderr);
      assert.equal(c.stdout.trim(), `shot ${id} cancelled`);
      const w = await waiting;
      assert.equal(w.code, 1, w.stderr);
      assert.match(w.stderr, new RegExp(`shot ${id} queued: 0/2 frames`));
      assert.match(w.stderr, new RegExp(`shot ${id} cancelled: 0/2 frames`));
    });
  });
  it('manages API keys and webhooks on the farm', async () => {
    // A submit/read key: can list shots, cannot manage keys; revoked, it is refused.
    const created = await celfarm(['keys', 'create', '--name', 'ci', '--scopes', 'submit,read', '--json'], env);
    assert.equal(created.code, 0, created.stderr);
    const key = JSON.parse(created.stdout) as { id: string; token: string; scopes: string[] };
    assert.match(key.token, /^cf_/);
    assert.deepEqual(key.scopes, ['submit', 'read']);
    const ci = { ...env, CELFARM_KEY: key.token };
    const who = await celfarm(['whoami', '--json'], ci);
    assert.equal(who.code, 0, who.stderr);
    assert.deepEqual((JSON.parse(who.stdout) as { scopes: string[] }).scopes, ['submit', 'read']);
    assert.equal((await celfarm(['list'], ci)).code, 0);
    const forbidden = await celfarm(['keys', 'list'], ci);
    assert.equal(forbidden.code, 2);
    assert.match(forbidden.stderr, /^error \[FORBIDDEN\]/m);
    const listed = await celfarm(['keys', 'list'], env);
    assert.match(listed.stdout, new RegExp(`^${key.id}\\s+ci\\s+submit,read`, 'm'));
    const revoked = await celfarm(['keys', 'revoke', key.id], env);
    assert.equal(revoked.code, 0, revoked.stderr);
    const refused = await celfarm(['list'], ci);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /^error \[UNAUTHENTICATED\]/m);
    const anonymous = await celfarm(['list'], { CELFARM_API: farm.apiUrl });
    assert.equal(anonymous.code, 2);
    assert.match(anonymous.stderr, /^error \[UNAUTHENTICATED\]/m);

    // Webhooks, delivered to a receiver in this process (loopback allowed by WEBHOOK_ALLOW_HOSTS).
    const received: { headers: IncomingMessage['headers']; body: string }[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((res) => receiver.listen(0, '127.0.0.1', res));
    try {
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
      const c = await celfarm(['webhooks', 'create', '--url', url, '--events', 'shot.completed,shot.failed', '--description', 'ci'], env);
      assert.equal(c.code, 0, c.stderr);
      const id = /^id\s+(\S+)$/m.exec(c.stdout)?.[1];
      const secret = /^secret\s+(whsec_\S+)$/m.exec(c.stdout)?.[1];
      assert.ok(id && secret, c.stdout);
      const l = await celfarm(['webhooks', 'list'], env);
      assert.match(l.stdout, new RegExp(`^${id}\\s+${url.replace(/[.]/g, '\\.')}\\s+shot\\.completed,shot\\.failed`, 'm'));

      const ping = await celfarm(['webhooks', 'ping', id], env);
      assert.equal(ping.code, 0, ping.stdout + ping.stderr);
      assert.match(ping.stdout, /delivered \(HTTP 204\)/);
      assert.equal(received.length, 1);
      const { headers, body } = received[0]!;
      const signed = `${String(headers['webhook-id'])}.${String(headers['webhook-timestamp'])}.${body}`;
      const mac = createHmac('sha256', Buffer.from(secret.slice('whsec_'.length), 'base64')).update(signed).digest('base64');
      assert.ok(String(headers['webhook-signature']).split(' ').includes(`v1,${mac}`), 'the delivery is signed with the secret');

      const d = await celfarm(['webhooks', 'deliveries', id, '--json'], env);
      assert.equal(d.code, 0, d.stderr);
      const attempts = JSON.parse(d.stdout) as { eventId: string; delivered: boolean }[];
      assert.ok(attempts.some((a) => a.eventId === headers['webhook-id'] && a.delivered));
      const table = await celfarm(['webhooks', 'deliveries', id], env);
      assert.match(table.stdout, /^at\s+eventId\s+type\s+attempt\s+delivered/m);

      const again = await celfarm(['webhooks', 'redeliver', id, String(headers['webhook-id'])], env);
      assert.equal(again.code, 0, again.stderr);
      for (let i = 0; i < 100 && received.length < 2; i++) await new Promise((res) => setTimeout(res, 100));
      assert.equal(received[1]?.headers['webhook-id'], headers['webhook-id'], 'redelivered with the same webhook-id');

      const del = await celfarm(['webhooks', 'delete', id], env);
      assert.equal(del.code, 0, del.stderr);
      const gone = await celfarm(['webhooks', 'ping', id], env);
      assert.equal(gone.code, 2);
      assert.match(gone.stderr, /^error \[NOT_FOUND\]/m);
    } finally {
      await new Promise<void>((res) => receiver.close(() => res()));
    }
  });
});

describe('the default idempotency key of a submit', () => {
  const bytes = (s: string) => new TextEncoder().encode(s);
  const inputs: ShotInputs = {
    settings: { steps: 4 },
    name: 'sh010',
    reference: { path: 'ref.png', bytes: bytes('ref') },
    frames: [
      { path: 'renders/sh010/sh010_0001.png', bytes: bytes('a') },
      { path: 'renders/sh010/sh010_0002.png', bytes: bytes('b') },
    ],
  };
  it('is the same for the same inputs, and differs when frame names, the name or the studio ids do', () => {
    const key = defaultIdempotencyKey(inputs);
    assert.match(key, /^cli-[0-9a-f]{48}$/);
    assert.equal(defaultIdempotencyKey({ ...inputs, reference: { path: 'elsewhere/ref.png', bytes: bytes('ref') } }), key);
    // Outputs are named after the frames: the same bytes under other names make another shot.
    const renamed = inputs.frames.map((f, i) => ({ ...f, path: `renders/sh010/take2_${i + 1}.png` }));
    assert.notEqual(defaultIdempotencyKey({ ...inputs, frames: renamed }), key);
    assert.notEqual(defaultIdempotencyKey({ ...inputs, name: 'sh010 v2' }), key);
    assert.notEqual(defaultIdempotencyKey({ ...inputs, externalIds: { show: 'ABC' } }), key);
  });
});

interface Seen {
  method: string;
  url: string;
  auth?: string;
  body: string;
}

/** A stub of the API's key and webhook routes (the contract), with scripted 429/503/401 answers. */
async function startStub(): Promise<{ url: string; seen: Seen[]; queue: [number, Record<string, string>, unknown][]; server: Server }> {
  const seen: Seen[] = [];
  const queue: [number, Record<string, string>, unknown][] = [];
  const read = async (req: IncomingMessage) => {
    let s = '';
    for await (const chunk of req) s += String(chunk);
    return s;
  };
  const server = createServer((req, res) => {
    void read(req).then((body) => {
      seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
      const send = (status: number, payload?: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(payload === undefined ? '' : JSON.stringify(payload));
      };
      const scripted = queue.shift();
      if (scripted) return send(scripted[0], scripted[2], scripted[1]);
      const route = `${req.method} ${req.url}`;
      if (req.method === 'GET' && req.url!.startsWith('/v1/shots?')) {
        // One match and a `next`: a search that stopped at its bound of shots per call.
        const shot = { id: 'sh_1', name: 'Opening pan', state: 'completed', project: 'demo', frameCount: 2, counts: { completed: 2 }, progress: 1, etaSeconds: 0, createdAt: '2026-01-01T00:00:00Z' };
        return send(200, { shots: [shot], next: '1767225600000.sh0' });
      }
      const key = { id: 'key_1', name: 'ci', scopes: ['submit', 'read'], createdAt: '2026-01-01T00:00:00Z' };
      const hook = { id: 'wh_1', url: 'https://example.com/hook', events: ['shot.completed'], createdAt: '2026-01-01T00:00:00Z' };
      if (route === 'POST /v1/keys') return send(201, { ...key, ...(JSON.parse(body) as object), token: 'cf_secret_token' });
      if (route === 'GET /v1/keys') return send(200, { keys: [key] });
      if (route === 'DELETE /v1/keys/key_1') return send(204);
      if (route === 'POST /v1/webhooks') return send(201, { ...hook, ...(JSON.parse(body) as object), secret: 'whsec_c2VjcmV0' });
      if (route === 'GET /v1/webhooks') return send(200, { webhooks: [hook] });
      if (route === 'DELETE /v1/webhooks/wh_1') return send(204);
      if (route === 'GET /v1/webhooks/wh_1/deliveries') {
        return send(200, { deliveries: [{ at: '2026-01-01T00:00:01Z', eventId: 'evt_1', type: 'shot.completed', attempt: 1, status: 200, durationMs: 12, delivered: true }] });
      }
      if (route === 'POST /v1/webhooks/wh_1/deliveries/evt_1/redeliver') return send(202, { eventId: 'evt_1', subscriptionId: 'wh_1', jobId: 'j1' });
      if (route === 'POST /v1/webhooks/wh_1/ping') {
        return send(200, { at: '2026-01-01T00:00:02Z', eventId: 'evt_ping', type: 'webhook.ping', attempt: 1, durationMs: 5, delivered: false, error: 'connect ECONNREFUSED' });
      }
      return send(404, { error: { code: 'NOT_FOUND', message: `${route} not found` } });
    });
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, queue, server };
}

describe('celfarm CLI: keys, webhooks, auth and retries (stub API)', () => {
  let stub: Awaited<ReturnType<typeof startStub>>;
  let env: Record<string, string>;
  before(async () => {
    stub = await startStub();
    env = { CELFARM_API: stub.url, CELFARM_KEY: 'cf_env_key' };
  });
  after(() => new Promise<void>((res) => stub.server.close(() => res())));

  it('keys create prints the token; list and revoke; the key from the environment is the bearer', async () => {
    const c = await celfarmHere(['keys', 'create', '--name', 'ci', '--scopes', 'submit,read', '--rate-limit', '5'], env);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout, 'cf_secret_token\n');
    const sent = stub.seen.at(-1)!;
    assert.equal(sent.auth, 'Bearer cf_env_key');
    assert.deepEqual(JSON.parse(sent.body), { name: 'ci', scopes: ['submit', 'read'], rateLimit: 5 });
    const l = await celfarmHere(['keys', 'list'], env);
    assert.equal(l.code, 0, l.stderr);
    assert.match(l.stdout, /^id\s+name\s+scopes/m);
    assert.match(l.stdout, /^key_1\s+ci\s+submit,read/m);
    const lj = await celfarmHere(['keys', 'list', '--json', '--key', 'cf_flag_key'], env);
    assert.equal((JSON.parse(lj.stdout) as { id: string }[])[0]!.id, 'key_1');
    assert.equal(stub.seen.at(-1)!.auth, 'Bearer cf_flag_key', '--key overrides CELFARM_KEY');
    const r = await celfarmHere(['keys', 'revoke', 'key_1'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(stub.seen.at(-1)!.method, 'DELETE');
    const bad = await celfarmHere(['keys', 'create', '--name', 'x', '--scopes', 'root'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /\(scopes\)/);
  });

  it('webhooks create, list, deliveries, redeliver, ping, delete', async () => {
    const c = await celfarmHere(['webhooks', 'create', '--url', 'https://example.com/hook', '--events', 'shot.completed,shot.failed', '--description', 'ci'], env);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /^secret\s+whsec_c2VjcmV0$/m);
    assert.deepEqual(JSON.parse(stub.seen.at(-1)!.body), { url: 'https://example.com/hook', events: ['shot.completed', 'shot.failed'], description: 'ci' });
    const all = await celfarmHere(['--api', stub.url, 'webhooks', 'create', '--url', 'https://example.com/all', '--json'], { CELFARM_KEY: 'cf_env_key' });
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual((JSON.parse(all.stdout) as { events: string[] }).events, ['*']);
    const l = await celfarmHere(['webhooks', 'list'], env);
    assert.match(l.stdout, /^wh_1\s+https:\/\/example\.com\/hook\s+shot\.completed/m);
    const d = await celfarmHere(['webhooks', 'deliveries', 'wh_1'], env);
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stdout, /^at\s+eventId\s+type\s+attempt\s+delivered\s+status\s+durationMs/m);
    assert.match(d.stdout, /\sevt_1\s+shot\.completed\s+1\s+true\s+200\s+12$/m);
    const rd = await celfarmHere(['webhooks', 'redeliver', 'wh_1', 'evt_1'], env);
    assert.equal(rd.code, 0, rd.stderr);
    assert.equal(stub.seen.at(-1)!.url, '/v1/webhooks/wh_1/deliveries/evt_1/redeliver');
    assert.match(rd.stdout, /queued \(job j1\)/);
    const p = await celfarmHere(['webhooks', 'ping', 'wh_1'], env);
    assert.equal(p.code, 1, 'a ping that was not delivered exits 1');
    assert.match(p.stdout, /^ping evt_ping not delivered: connect ECONNREFUSED in 5 ms$/m);
    const del = await celfarmHere(['webhooks', 'delete', 'wh_1'], env);
    assert.equal(del.code, 0, del.stderr);
    const gone = await celfarmHere(['webhooks', 'deliveries', 'wh_9'], env);
    assert.equal(gone.code, 2);
    assert.match(gone.stderr, /^error \[NOT_FOUND\]/m);
  });

  it('list --search sends q= and prints how to go on whenever there is a next page, even a short one', async () => {
    const r = await celfarmHere(['list', '-q', ' Opening pan', '--limit', '20'], env);
    assert.equal(r.code, 0, r.stderr);
    const sent = new URL(stub.seen.at(-1)!.url, stub.url);
    assert.equal(sent.searchParams.get('q'), 'Opening pan');
    assert.equal(sent.searchParams.get('limit'), '20');
    assert.match(r.stdout, /^sh_1\s+Opening pan\s+completed\s+demo\s+2\/2/m);
    assert.match(r.stderr, /^the search stopped .*: celfarm list --search 'Opening pan' --limit 20 --before 1767225600000\.sh0$/m);
    const plain = await celfarmHere(['list', '--limit', '1'], env);
    assert.match(plain.stderr, /^more: celfarm list --limit 1 --before 1767225600000\.sh0$/m);
  });

  it('retries 429 and 503 after Retry-After; 401/403 exit 2, 5xx exit 1', async () => {
    stub.queue.push(
      [429, { 'retry-after': '1' }, { error: { code: 'RATE_LIMITED', message: 'slow down' } }],
      [503, { 'retry-after': '0' }, { error: { code: 'UNAVAILABLE', message: 'redis is down' } }],
    );
    const before = stub.seen.length;
    const t0 = Date.now();
    const ok = await celfarmHere(['keys', 'list', '--json'], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(stub.seen.length - before, 3);
    assert.ok(Date.now() - t0 >= 1000, 'waited out Retry-After: 1');
    assert.match(ok.stderr, /rate limited \(429\); retrying in 1\.0 s/);
    assert.match(ok.stderr, /API unavailable \(503\); retrying in 0\.0 s/);

    stub.queue.push([401, {}, { error: { code: 'UNAUTHENTICATED', message: 'missing or invalid API key' } }]);
    const unauth = await celfarmHere(['list'], env);
    assert.equal(unauth.code, 2);
    assert.match(unauth.stderr, /^error \[UNAUTHENTICATED\]: missing or invalid API key$/m);
    stub.queue.push([403, {}, { error: { code: 'FORBIDDEN', message: 'needs scope admin' } }]);
    const forbidden = await celfarmHere(['keys', 'list'], env);
    assert.equal(forbidden.code, 2);
    assert.match(forbidden.stderr, /\[FORBIDDEN\]/);
    stub.queue.push([500, {}, { error: { code: 'INTERNAL', message: 'internal error' } }]);
    const boom = await celfarmHere(['webhooks', 'list'], env);
    assert.equal(boom.code, 1);
    assert.match(boom.stderr, /^error \[INTERNAL\]: internal error$/m);
    noStack(boom);
    const down = await celfarmHere(['list'], { CELFARM_API: 'http://127.0.0.1:9' });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /^error \[UNREACHABLE\]: cannot reach the API at http:\/\/127\.0\.0\.1:9/m);
  });
});
