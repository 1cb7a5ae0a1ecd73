/**
 * `celfarm submit <folder>`: the images of a folder as one shot, with a colour reference and the
 * pipeline's knobs as flags; optionally followed until it finishes and its outputs downloaded.
 */
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { InputError } from '../api.ts';
import { numberArg, type CliContext } from '../context.ts';
import { followShots } from '../follow.ts';
import { json } from '../format.ts';
import { defaultIdempotencyKey, frameFiles, readInput, shotForm, type ShotInputs } from '../inputs.ts';
import { addKnobOptions, parseSettingsJson, settingsFromOptions } from '../knobs.ts';
import { downloadShot, followOptions, reportFinished } from './shot-report.ts';

export function addSubmitCommand(program: Command, ctx: CliContext): void {
  const submit = program
    .command('submit')
    .description('submit the images of a folder as one shot (frames sorted by name)')
    .argument('<folder>', 'folder of sketch frames (.png, .jpg, .jpeg, .webp), sorted by name')
    .option('--reference <image>', 'colour reference image (required)')
    .option('--background <image>', 'background image (background replacement)')
    .option('--project <id>', "project (env CELFARM_PROJECT; default: the API key's project)")
    .option('--settings <json>', 'settings as JSON (or @file.json); knob flags override it')
    .option('--priority <n>', 'priority 0–100 (default 50)', numberArg('--priority', true))
    .option('--failed-frame-share <x>', 'share of frames that may fail before the shot fails, 0–1', numberArg('--failed-frame-share'))
    .addOption(new Option('--idempotency-key <key>', 'Idempotency-Key (default: a hash of the inputs and settings, so a retried submit returns the first shot)'))
    .addOption(new Option('--no-idempotency-key', 'send no Idempotency-Key: always create a new shot'))
    .option('--wait', 'follow the shot until it finishes (exit 1 when it fails or is cancelled)')
    .option('--out <dir>', 'after waiting, download the outputs to DIR (00001.png, …); implies --wait')
    .option('--poll <s>', 'poll period in seconds while waiting', numberArg('--poll'), 0.5)
    .option('--timeout <s>', 'stop waiting after this many seconds (exit 1)', numberArg('--timeout'))
    .option('--quiet', 'no progress output')
    .option('--json', 'print the shot as JSON');
  addKnobOptions(submit);
  submit.action(async (folder: string, opts: Record<string, unknown>, cmd: Command) => {
    const inputs = await readShotInputs(folder, opts, ctx);
    const idempotencyKey =
      opts.idempotencyKey === false ? undefined : typeof opts.idempotencyKey === 'string' ? opts.idempotencyKey : defaultIdempotencyKey(inputs);
    const api = ctx.api(cmd);
    const { created, shot } = await api.submitShot(shotForm(inputs), idempotencyKey);
    ctx.io.err(
      created
        ? `submitted shot ${shot.id}: ${shot.frameCount} frames, project ${shot.project}, seed ${shot.seed}\n`
        : `shot ${shot.id} was already submitted with idempotency key ${idempotencyKey} (it is ${shot.state}); pass --no-idempotency-key for a new shot\n`,
    );
    const out = opts.out as string | undefined;
    if (!opts.wait && !out) {
      ctx.io.out(opts.json ? json(shot) : `${shot.id}\n`);
      return;
    }
    if (!opts.json) ctx.io.out(`${shot.id}\n`);
    const [final] = await followShots(api, [shot.id], followOptions(ctx, opts));
    const [frames] = await reportFinished(ctx, api, [final!], opts.json === true, out !== undefined);
    if (out && final!.counts.completed > 0 && !(await downloadShot(ctx, api, final!, frames!, out))) ctx.fail();
  });
}

/** The folder's frames, the reference, background, settings and request fields, read and checked before anything is sent. */
async function readShotInputs(folder: string, opts: Record<string, unknown>, ctx: CliContext): Promise<ShotInputs> {
  const reference = opts.reference as string | undefined;
  const background = opts.background as string | undefined;
  if (!reference) throw new InputError('MISSING_INPUT', 'required: --reference <image>', 'reference');
  const base = typeof opts.settings === 'string' ? parseSettingsJson(opts.settings, (p) => readFileSync(p, 'utf8')) : {};
  const settings = settingsFromOptions(opts, base);
  const framePaths = await frameFiles(folder, [reference, ...(background ? [background] : [])]);
  return {
    ...(typeof opts.project === 'string' ? { project: opts.project } : ctx.cfg.project ? { project: ctx.cfg.project } : {}),
    settings,
    ...(opts.priority !== undefined ? { priority: opts.priority as number } : {}),
    ...(opts.failedFrameShare !== undefined ? { failedFrameShare: opts.failedFrameShare as number } : {}),
    reference: { path: reference, bytes: await readInput(reference, 'reference') },
    ...(background ? { background: { path: background, bytes: await readInput(background, 'background') } } : {}),
    frames: await Promise.all(framePaths.map(async (p, i) => ({ path: p, bytes: await readInput(p, `frames[${i}]`) }))),
  };
}
