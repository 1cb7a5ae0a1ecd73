/**
 * `celfarm submit <folder>`: the images of a folder as one shot, named (by default after the
 * folder) and tagged with the studio's ids, with a colour reference, the pipeline's knobs as flags
 * and, optionally, its own shot QA thresholds (`--qa-threshold`); optionally followed until it
 * finishes and its outputs downloaded. The settings warnings of the answer (a size fitted, a knob
 * unused) are printed; `--strict` makes them exit 3.
 */
import { readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { formRequestSchema, PALETTE_LOCKS, REFERENCE_CHAINS, type SubmitView } from '@celfarm/contract';
import { InputError } from '../api.ts';
import { EXIT, listArg, numberArg, type CliContext } from '../context.ts';
import { followShots } from '../follow.ts';
import { json, shotTitle, warningText } from '../format.ts';
import { checkRequest, defaultIdempotencyKey, frameFiles, readInput, shotForm, type ShotInputs } from '../inputs.ts';
import { addKnobOptions, parseSettingsJson, settingsFromOptions } from '../knobs.ts';
import { parseThresholds, QA_SCORES } from '../qa.ts';
import { downloadShot, followOptions, reportFinished } from './shot-report.ts';

export function addSubmitCommand(program: Command, ctx: CliContext): void {
  const submit = program
    .command('submit')
    .description('submit the images of a folder as one shot (frames sorted by name; outputs named after them)')
    .argument('<folder>', 'folder of sketch frames (.png, .jpg, .jpeg, .webp), sorted by name')
    .option('--reference <image>', 'colour reference image (required)')
    .option('--background <image>', 'background image (background replacement)')
    .option('--name <name>', "what the studio calls the shot, 1–200 characters (default: --shot when given, else the folder's name)")
    .option('--show <code>', 'the show code of your tracking (1–64 of A–Z a–z 0–9 . _ -); searchable')
    .option('--sequence <code>', 'the sequence code (as --show)')
    .option('--shot <code>', 'the shot code (as --show)')
    .option('--project <id>', "project (env CELFARM_PROJECT; default: the API key's project)")
    .option('--settings <json>', 'settings as JSON (or @file.json); knob flags override it')
    .option('--priority <n>', 'priority 0–100 (default 50)', numberArg('--priority', true))
    .option('--failed-frame-share <x>', 'share of frames that may fail before the shot fails, 0–1', numberArg('--failed-frame-share'))
    .option(
      '--qa-threshold <name=value,…>',
      `shot QA thresholds of this shot, over the project's (${QA_SCORES.join(', ')}; e.g. palette=8,lineFidelity=0.5); repeatable`,
      (v: string, prev: string[] = []) => [...prev, ...listArg(v)],
    )
    .option('--shared-noise', "consistency: every frame starts from the shot's seed (not seed + k − 1)")
    .addOption(new Option('--palette-lock <source>', "consistency: pull each output's flat colours onto a palette, lines and shading kept").choices([...PALETTE_LOCKS]))
    .addOption(
      new Option(
        '--reference-chain <source>',
        'consistency: `approved` renders each frame from the nearest approved frame before it (its output as the reference); `previous`, in links of --chain-link frames, each from the last output of the link before',
      ).choices([
        ...REFERENCE_CHAINS,
      ]),
    )
    .option('--chain-link <n>', 'consistency: frames per link with --reference-chain previous (default 8)', numberArg('--chain-link', true))
    .addOption(new Option('--idempotency-key <key>', 'Idempotency-Key (default: a hash of the inputs and settings, so a retried submit returns the first shot)'))
    .addOption(new Option('--no-idempotency-key', 'send no Idempotency-Key: always create a new shot'))
    .option('--strict', `exit ${EXIT.WARNINGS} when the farm adjusted or ignored a setting (the warnings are printed; the shot is not followed, and renders unless cancelled)`)
    .option('--wait', 'follow the shot until it finishes (exit 1 when it fails or is cancelled)')
    .option('--out <dir>', 'after waiting, download the outputs to DIR, named after the frames (sh010_0001.png, …); implies --wait')
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
        ? `submitted shot ${shot.id} ${shotTitle(shot)}: ${shot.frameCount} frame${shot.frameCount === 1 ? '' : 's'}, project ${shot.project}, seed ${shot.seed}\n`
        : `shot ${shot.id} ${shotTitle(shot)} was already submitted with idempotency key ${idempotencyKey} (it is ${shot.state}); pass --no-idempotency-key for a new shot\n`,
    );
    for (const w of shot.warnings) ctx.io.err(`warning ${warningText(w)}\n`);
    const out = opts.out as string | undefined;
    if (opts.strict && shot.warnings.length > 0) {
      refuseWarnings(ctx, shot, opts.json === true);
      return;
    }
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

/**
 * `--strict` with warnings: exit 3 without following the shot. It is not cancelled: a rerun of
 * the same command returns it (same idempotency key), and without `--strict` follows it.
 */
function refuseWarnings(ctx: CliContext, shot: SubmitView, asJson: boolean): void {
  ctx.io.out(asJson ? json(shot) : `${shot.id}\n`);
  const n = shot.warnings.length;
  ctx.io.err(
    `--strict: ${n} settings warning${n === 1 ? '' : 's'}; exit ${EXIT.WARNINGS} without following shot ${shot.id} ` +
      `(it renders as resolved; stop it with: celfarm cancel ${shot.id})\n`,
  );
  ctx.fail(EXIT.WARNINGS);
}

/** The request paths a submit's flags fill in, for messages about bad values. */
const REQUEST_FLAGS: Record<string, string> = {
  priority: '--priority',
  failedFrameShare: '--failed-frame-share',
  'externalIds.show': '--show',
  'externalIds.sequence': '--sequence',
  'externalIds.shot': '--shot',
  ...Object.fromEntries(QA_SCORES.map((s) => [`qa.thresholds.${s}`, '--qa-threshold'])),
  'consistency.chainLink': '--chain-link',
};

/**
 * The shot's name: `--name`; else the shot code; else the folder's name (`renders/sh010` →
 * `sh010`), which a multipart upload cannot tell the API. A folder name the contract would
 * refuse is not sent: the API then derives one from the frames' file names.
 */
function shotName(folder: string, opts: Record<string, unknown>): string | undefined {
  if (typeof opts.name === 'string') return opts.name;
  if (typeof opts.shot === 'string') return opts.shot;
  const fromFolder = basename(resolve(folder));
  return formRequestSchema.shape.name.safeParse(fromFolder).success ? fromFolder : undefined;
}

/** The folder's frames, the reference, background, settings and request fields, read and checked before anything is sent. */
async function readShotInputs(folder: string, opts: Record<string, unknown>, ctx: CliContext): Promise<ShotInputs> {
  const reference = opts.reference as string | undefined;
  const background = opts.background as string | undefined;
  if (!reference) throw new InputError('MISSING_INPUT', 'required: --reference <image>', 'reference');
  const base = typeof opts.settings === 'string' ? parseSettingsJson(opts.settings, (p) => readFileSync(p, 'utf8')) : {};
  const settings = settingsFromOptions(opts, base);
  const externalIds = Object.fromEntries(
    (['show', 'sequence', 'shot'] as const).flatMap((k) => (typeof opts[k] === 'string' ? [[k, opts[k]]] : [])),
  ) as ShotInputs['externalIds'];
  const project = typeof opts.project === 'string' ? opts.project : ctx.cfg.project;
  const name = shotName(folder, opts);
  const qaThresholds = parseThresholds((opts.qaThreshold as string[] | undefined) ?? [], '--qa-threshold');
  const consistency = {
    ...(opts.sharedNoise === true ? { sharedNoise: true } : {}),
    ...(typeof opts.paletteLock === 'string' ? { paletteLock: opts.paletteLock as (typeof PALETTE_LOCKS)[number] } : {}),
    ...(typeof opts.referenceChain === 'string' ? { referenceChain: opts.referenceChain as (typeof REFERENCE_CHAINS)[number] } : {}),
    ...(opts.chainLink !== undefined ? { chainLink: opts.chainLink as number } : {}),
  };
  const request: Omit<ShotInputs, 'reference' | 'background' | 'frames'> = {
    ...(project !== undefined ? { project } : {}),
    settings,
    ...(opts.priority !== undefined ? { priority: opts.priority as number } : {}),
    ...(opts.failedFrameShare !== undefined ? { failedFrameShare: opts.failedFrameShare as number } : {}),
    ...(name !== undefined ? { name } : {}),
    ...(Object.keys(externalIds ?? {}).length > 0 ? { externalIds } : {}),
    ...(Object.keys(qaThresholds).length > 0 ? { qa: { thresholds: qaThresholds } } : {}),
    ...(Object.keys(consistency).length > 0 ? { consistency } : {}),
  };
  checkRequest(request, {
    ...REQUEST_FLAGS,
    project: typeof opts.project === 'string' ? '--project' : 'CELFARM_PROJECT',
    name: typeof opts.name === 'string' ? '--name' : '--shot',
  });
  const framePaths = await frameFiles(folder, [reference, ...(background ? [background] : [])]);
  return {
    ...request,
    reference: { path: reference, bytes: await readInput(reference, 'reference') },
    ...(background ? { background: { path: background, bytes: await readInput(background, 'background') } } : {}),
    frames: await Promise.all(framePaths.map(async (p, i) => ({ path: p, bytes: await readInput(p, `frames[${i}]`) }))),
  };
}
