/**
 * `celfarm`: submit shots to a celfarm farm, follow them, download their outputs, and manage API
 * keys and webhooks.
 *
 *   celfarm submit shots/sc010 --reference ref.png --mode full --steps 20 --wait --out out/sc010
 *   celfarm status <shot> [--json]      celfarm list [--state running]     celfarm wait <shot>
 *   celfarm download <shot> --out DIR   celfarm cancel <shot>              celfarm retry <shot>
 *   celfarm keys create --name ci --scopes submit,read                     celfarm keys list|revoke
 *   celfarm webhooks create --url https://… --events shot.completed,shot.failed
 *
 * Global: `--api <url>` (CELFARM_API, default http://127.0.0.1:8080), `--key <token>` (CELFARM_KEY).
 * Exit status: 0 success; 2 bad input (a 4xx answer, a bad flag or file); 1 anything else,
 * including a shot that ended failed or cancelled.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ApiError, CelfarmApi, InputError, TERMINAL_STATES, type ShotView } from './api.ts';
import { DEFAULT_API, readConfig, type CliConfig } from './config.ts';
import { duration, recordTable, table } from './format.ts';
import { CommandError, downloadOutputs, followShots, progressLine } from './follow.ts';
import { defaultIdempotencyKey, frameFiles, readInput, shotForm, type ShotInputs } from './inputs.ts';
import { addKnobOptions, parseSettingsJson, settingsFromOptions } from './knobs.ts';

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

const defaultIo: CliIo = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
};

const SHOT_STATES = ['queued', 'preparing', 'running', 'completed', 'failed', 'cancelled'];
const SCOPES = ['submit', 'read', 'admin'];

function numberArg(flag: string, integer = false) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
      throw new InvalidArgumentError(`${flag} must be ${integer ? 'an integer' : 'a number'}`);
    }
    return n;
  };
}

const listArg = (v: string): string[] =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

const errorText = (e: { code: string; field?: string; message: string }) => `[${e.code}]${e.field ? ` (${e.field})` : ''}: ${e.message}`;

function frameTable(v: ShotView): string {
  return table(
    ['frame', 'state', 'stage', 'step', 'attempts', 'worker', 'seed', 'output / error'],
    v.frames.map((f) => [
      f.frame,
      f.state,
      f.stage,
      f.step !== undefined && f.steps ? `${f.step}/${f.steps}` : undefined,
      f.attempts,
      f.worker,
      f.seed,
      f.error ? errorText(f.error) : f.output,
    ]),
  );
}

function shotHeader(v: ShotView): string {
  const counts = Object.entries(v.counts ?? {})
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}`)
    .join(', ');
  const lines = [
    `shot      ${v.id} (${v.project})`,
    `state     ${v.state}${v.round ? ` (retry round ${v.round})` : ''}${v.awaitingUploads ? ', awaiting uploads' : ''}`,
    `frames    ${v.frameCount}${counts ? `: ${counts}` : ''}`,
    `progress  ${Math.round(v.progress * 100)}%, ETA ${duration(v.etaSeconds)}`,
    `settings  ${JSON.stringify(v.settings)} seed ${v.seed}, priority ${v.priority}`,
    `created   ${v.createdAt}, updated ${v.updatedAt}`,
  ];
  if (v.error) lines.push(`error     ${errorText(v.error)}`);
  return `${lines.join('\n')}\n`;
}

export function buildProgram(cfg: CliConfig, io: CliIo = defaultIo): { program: Command; exitCode: () => number } {
  let exitCode = 0;
  const program = new Command('celfarm')
    .description('Submit shots to a celfarm render farm, follow them, download outputs, manage API keys and webhooks.')
    .addOption(new Option('--api <url>', `API base URL (env CELFARM_API, default ${DEFAULT_API})`))
    .addOption(new Option('--key <token>', 'API key, sent as a bearer token (env CELFARM_KEY)'))
    .showHelpAfterError('(add --help for usage)')
    // Set before the subcommands are added: they copy these settings when created.
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err });

  const apiOf = (cmd: Command): CelfarmApi => {
    const g = cmd.optsWithGlobals<{ api?: string; key?: string }>();
    const api = g.api ?? cfg.api;
    if (!URL.canParse(api) || !/^https?:$/.test(new URL(api).protocol)) {
      throw new InputError('INVALID_REQUEST', `${api} is not an http(s) URL`, g.api !== undefined ? '--api' : 'CELFARM_API');
    }
    return new CelfarmApi({
      api,
      key: g.key ?? cfg.key,
      onRetry: ({ status, waitMs }) =>
        io.err(`${status === 429 ? 'rate limited' : 'API unavailable'} (${status}); retrying in ${(waitMs / 1000).toFixed(1)} s\n`),
    });
  };

  const followOptions = (opts: { poll?: number; timeout?: number; quiet?: boolean }) => ({
    pollMs: (opts.poll ?? 0.5) * 1000,
    ...(opts.timeout !== undefined ? { timeoutMs: opts.timeout * 1000 } : {}),
    quiet: opts.quiet === true,
    log: io.err,
  });

  /** Downloads a finished shot's outputs; true when every frame was written. */
  const download = async (api: CelfarmApi, v: ShotView, out: string): Promise<boolean> => {
    const { files, missing } = await downloadOutputs(api, v, out);
    for (const f of files) io.out(`${f}\n`);
    io.err(`wrote ${files.length} output${files.length === 1 ? '' : 's'} of shot ${v.id} to ${out}\n`);
    if (missing.length) io.err(`no output for ${missing.length} frame${missing.length === 1 ? '' : 's'}: ${missing.join(', ')}\n`);
    return missing.length === 0;
  };

  const finish = (views: ShotView[], asJson: boolean) => {
    if (asJson) io.out(json(views.length === 1 ? views[0] : views));
    for (const v of views) {
      // Without a TTY the follow loop has already printed this line.
      if (process.stderr.isTTY) io.err(`${progressLine(v)}\n`);
      if (v.error) io.err(`  error ${errorText(v.error)}\n`);
      for (const f of v.frames) if (f.error) io.err(`  frame ${f.frame}: ${errorText(f.error)}\n`);
    }
    if (views.some((v) => v.state !== 'completed')) exitCode = 1;
  };

  // submit
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
    const reference = opts.reference as string | undefined;
    const background = opts.background as string | undefined;
    if (!reference) throw new InputError('MISSING_INPUT', 'required: --reference <image>', 'reference');
    const base = typeof opts.settings === 'string' ? parseSettingsJson(opts.settings, (p) => readFileSync(p, 'utf8')) : {};
    const settings = settingsFromOptions(opts, base);
    const framePaths = await frameFiles(folder, [reference, ...(background ? [background] : [])]);
    const inputs: ShotInputs = {
      ...(typeof opts.project === 'string' ? { project: opts.project } : cfg.project ? { project: cfg.project } : {}),
      settings,
      ...(opts.priority !== undefined ? { priority: opts.priority as number } : {}),
      ...(opts.failedFrameShare !== undefined ? { failedFrameShare: opts.failedFrameShare as number } : {}),
      reference: { path: reference, bytes: await readInput(reference, 'reference') },
      ...(background ? { background: { path: background, bytes: await readInput(background, 'background') } } : {}),
      frames: await Promise.all(framePaths.map(async (p, i) => ({ path: p, bytes: await readInput(p, `frames[${i}]`) }))),
    };
    const idempotencyKey =
      opts.idempotencyKey === false ? undefined : typeof opts.idempotencyKey === 'string' ? opts.idempotencyKey : defaultIdempotencyKey(inputs);
    const api = apiOf(cmd);
    const { created, shot } = await api.submitShot(shotForm(inputs), idempotencyKey);
    io.err(
      created
        ? `submitted shot ${shot.id}: ${shot.frameCount} frames, project ${shot.project}, seed ${shot.seed}\n`
        : `shot ${shot.id} was already submitted with idempotency key ${idempotencyKey} (it is ${shot.state}); pass --no-idempotency-key for a new shot\n`,
    );
    const out = opts.out as string | undefined;
    if (!opts.wait && !out) {
      io.out(opts.json ? json(shot) : `${shot.id}\n`);
      return;
    }
    if (!opts.json) io.out(`${shot.id}\n`);
    const [final] = await followShots(api, [shot.id], followOptions(opts));
    finish([final!], opts.json === true);
    if (out && final!.frames.some((f) => f.state === 'completed')) {
      if (!(await download(api, final!, out))) exitCode = 1;
    }
  });

  program
    .command('status')
    .description('a shot: state, progress, ETA and a table of its frames')
    .argument('<shot>', 'shot id')
    .option('--json', 'print the shot view as JSON')
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      const v = await apiOf(cmd).shot(id);
      io.out(opts.json ? json(v) : `${shotHeader(v)}\n${frameTable(v)}`);
    });

  program
    .command('list')
    .description('shots, newest first')
    .addOption(new Option('--state <state>', 'only shots in this state').choices(SHOT_STATES))
    .option('--project <id>', 'only shots of this project')
    .option('--limit <n>', 'at most N shots (1–500, default 50)', numberArg('--limit', true))
    .option('--before <cursor>', 'the next page: the cursor a previous list printed')
    .option('--json', 'print the answer as JSON ({shots, next})')
    .action(async (opts: { state?: string; project?: string; limit?: number; before?: string; json?: boolean }, cmd: Command) => {
      const page = await apiOf(cmd).shots({ state: opts.state, project: opts.project, limit: opts.limit, before: opts.before });
      if (opts.json) {
        io.out(json(page));
        return;
      }
      io.out(
        page.shots.length === 0
          ? '(no shots)\n'
          : table(
              ['id', 'state', 'project', 'frames', 'progress', 'ETA', 'created'],
              page.shots.map((s) => [s.id, s.state, s.project, `${s.counts?.completed ?? 0}/${s.frameCount}`, `${Math.round(s.progress * 100)}%`, duration(s.etaSeconds), s.createdAt]),
            ),
      );
      if (page.next) io.err(`more: celfarm list --before ${page.next}\n`);
    });

  program
    .command('wait')
    .description('follow shots until they finish; exit 0 when all completed, 1 when one failed or was cancelled')
    .argument('<shots...>', 'shot ids')
    .option('--out <dir>', 'then download the outputs (one shot: DIR/00001.png …; several: DIR/<shot>/…)')
    .option('--poll <s>', 'poll period in seconds', numberArg('--poll'), 0.5)
    .option('--timeout <s>', 'give up after this many seconds (exit 1)', numberArg('--timeout'))
    .option('--quiet', 'no progress output')
    .option('--json', 'print the final shot view(s) as JSON')
    .action(async (ids: string[], opts: { out?: string; poll?: number; timeout?: number; quiet?: boolean; json?: boolean }, cmd: Command) => {
      const api = apiOf(cmd);
      const views = await followShots(api, ids, followOptions(opts));
      finish(views, opts.json === true);
      if (opts.out) {
        for (const v of views) {
          if (!v.frames.some((f) => f.state === 'completed')) continue;
          if (!(await download(api, v, views.length === 1 ? opts.out : join(opts.out, v.id)))) exitCode = 1;
        }
      }
    });

  program
    .command('download')
    .description("download a shot's outputs as DIR/00001.png, 00002.png, … (exit 1 when a frame has no output)")
    .argument('<shot>', 'shot id')
    .requiredOption('--out <dir>', 'output folder (created when missing)')
    .action(async (id: string, opts: { out: string }, cmd: Command) => {
      const api = apiOf(cmd);
      const v = await api.shot(id);
      if (!TERMINAL_STATES.includes(v.state)) io.err(`shot ${v.id} is ${v.state}; downloading the frames finished so far\n`);
      if (!(await download(api, v, opts.out))) exitCode = 1;
    });

  const action = (name: 'cancel' | 'retry', description: string) =>
    program
      .command(name)
      .description(description)
      .argument('<shot>', 'shot id')
      .option('--json', 'print the shot view as JSON')
      .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
        const v = await apiOf(cmd).shotAction(id, name);
        io.out(opts.json ? json(v) : `shot ${v.id} ${v.state}\n`);
      });
  action('cancel', 'cancel a shot: queued frames are dropped, active ones stop at their next step');
  action('retry', 'run the failed frames of a finished shot again');

  program
    .command('delete')
    .description('cancel a shot, then delete its objects and records')
    .argument('<shot>', 'shot id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      await apiOf(cmd).deleteShot(id);
      io.out(`deleted shot ${id}\n`);
    });

  // API keys
  const keys = program.command('keys').description('API keys of your project (admin scope)');
  keys
    .command('create')
    .description('create a key; prints its token, shown only this once')
    .requiredOption('--name <name>', 'a name to recognise the key by')
    .option('--scopes <list>', `comma-separated scopes: ${SCOPES.join(', ')}`, listArg, ['submit', 'read'])
    .option('--rate-limit <n>', 'requests per second this key may make', numberArg('--rate-limit'))
    .option('--json', 'print the created key (with its token) as JSON')
    .action(async (opts: { name: string; scopes: string[]; rateLimit?: number; json?: boolean }, cmd: Command) => {
      const bad = opts.scopes.find((s) => !SCOPES.includes(s));
      if (bad !== undefined || opts.scopes.length === 0) {
        throw new InputError('INVALID_REQUEST', `scopes must be some of ${SCOPES.join(', ')}${bad !== undefined ? `; got ${bad}` : ''}`, 'scopes');
      }
      const key = await apiOf(cmd).createKey({ name: opts.name, scopes: opts.scopes, ...(opts.rateLimit !== undefined ? { rateLimit: opts.rateLimit } : {}) });
      if (opts.json) {
        io.out(json(key));
        return;
      }
      io.out(`${String(key.token)}\n`);
      io.err(`key ${String(key.id)} "${String(key.name)}" (${[key.scopes].flat().join(',')}); the token above is shown only once\n`);
    });
  keys
    .command('list')
    .description("your project's keys (never their tokens)")
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const list = await apiOf(cmd).keys();
      io.out(opts.json ? json(list) : recordTable(list, ['id', 'name', 'scopes', 'project', 'rateLimit', 'createdAt', 'revokedAt', 'lastUsedAt']));
    });
  keys
    .command('revoke')
    .description('revoke a key (takes effect at once)')
    .argument('<id>', 'key id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      await apiOf(cmd).revokeKey(id);
      io.out(`revoked key ${id}\n`);
    });

  // webhooks
  const hooks = program.command('webhooks').description('webhook endpoints of your project (admin scope)');
  hooks
    .command('create')
    .description('register an endpoint; prints its signing secret, shown only this once')
    .requiredOption('--url <url>', 'HTTPS endpoint that receives the events')
    .option('--events <list>', 'comma-separated event types (shot.completed, frame.failed, …) or *', listArg, ['*'])
    .option('--description <text>', 'a note for yourself')
    .option('--json', 'print the created webhook (with its secret) as JSON')
    .action(async (opts: { url: string; events: string[]; description?: string; json?: boolean }, cmd: Command) => {
      if (opts.events.length === 0) throw new InputError('INVALID_REQUEST', 'give at least one event type, or *', 'events');
      const hook = await apiOf(cmd).createWebhook({ url: opts.url, events: opts.events, ...(opts.description ? { description: opts.description } : {}) });
      if (opts.json) {
        io.out(json(hook));
        return;
      }
      io.out(
        `id      ${String(hook.id)}\nurl     ${String(hook.url)}\nevents  ${[hook.events].flat().join(',')}\nsecret  ${String(hook.secret)}\n`,
      );
      io.err('keep the secret: it verifies the webhook-signature header of every delivery\n');
    });
  hooks
    .command('list')
    .description('registered endpoints')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const list = await apiOf(cmd).webhooks();
      io.out(opts.json ? json(list) : recordTable(list, ['id', 'url', 'events', 'description', 'disabled', 'createdAt']));
    });
  hooks
    .command('delete')
    .description('remove an endpoint')
    .argument('<id>', 'webhook id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      await apiOf(cmd).deleteWebhook(id);
      io.out(`deleted webhook ${id}\n`);
    });
  hooks
    .command('deliveries')
    .description("an endpoint's recent deliveries")
    .argument('<id>', 'webhook id')
    .option('--json', 'print as JSON')
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      const list = await apiOf(cmd).deliveries(id);
      io.out(
        opts.json
          ? json(list)
          : recordTable(list, ['at', 'eventId', 'type', 'attempt', 'delivered', 'status', 'durationMs', 'error']),
      );
    });
  hooks
    .command('redeliver')
    .description('send an event to an endpoint again')
    .argument('<id>', 'webhook id')
    .argument('<eventId>', 'event id (from deliveries)')
    .option('--json', 'print the answer as JSON')
    .action(async (id: string, eventId: string, opts: { json?: boolean }, cmd: Command) => {
      const r = (await apiOf(cmd).redeliver(id, eventId)) as { jobId?: string } | undefined;
      io.out(opts.json ? json(r ?? null) : `redelivery of ${eventId} to webhook ${id} queued${r?.jobId ? ` (job ${r.jobId})` : ''}\n`);
    });
  hooks
    .command('ping')
    .description('deliver a webhook.ping event now and show the attempt (exit 1 when it was not delivered)')
    .argument('<id>', 'webhook id')
    .option('--json', 'print the attempt as JSON')
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      const r = ((await apiOf(cmd).ping(id)) ?? {}) as { eventId?: string; delivered?: boolean; status?: number; durationMs?: number; error?: string };
      if (opts.json) io.out(json(r));
      else {
        const how = r.delivered ? 'delivered' : `not delivered${r.error ? `: ${r.error}` : ''}`;
        io.out(`ping ${r.eventId ?? ''} ${how}${r.status !== undefined ? ` (HTTP ${r.status})` : ''}${r.durationMs !== undefined ? ` in ${r.durationMs} ms` : ''}\n`);
      }
      if (r.delivered === false) exitCode = 1;
    });

  program
    .command('whoami')
    .description('the project, key and scopes of the API key in use')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const me = (await apiOf(cmd).request<Record<string, unknown>>('GET', '/v1/session')).body;
      io.out(opts.json ? json(me) : `project ${String(me.project)}\nkey     ${String(me.keyId)} (${String(me.name)})\nscopes  ${[me.scopes].flat().join(',')}\n`);
    });

  return { program, exitCode: () => exitCode };
}

/** Runs the CLI; resolves with the exit status. API and input errors print one line, never a stack. */
export async function main(argv = process.argv, cfg: CliConfig = readConfig(), io: CliIo = defaultIo): Promise<number> {
  const { program, exitCode } = buildProgram(cfg, io);
  try {
    await program.parseAsync(argv);
    return exitCode();
  } catch (e) {
    if (e instanceof ApiError) {
      io.err(`error ${errorText(e)}\n`);
      return e.status >= 400 && e.status < 500 ? 2 : 1;
    }
    if (e instanceof InputError) {
      io.err(`error ${errorText(e)}\n`);
      return 2;
    }
    if (e instanceof CommandError) {
      io.err(`error ${errorText(e)}\n`);
      return 1;
    }
    const ce = e as { code?: string; exitCode?: number };
    // Commander has printed its message; help and version exit 0, usage errors 2.
    if (typeof ce.code === 'string' && ce.code.startsWith('commander.')) return ce.exitCode === 0 ? 0 : 2;
    io.err(`error: ${(e as Error).message}\n`);
    return 1;
  }
}
