/**
 * The shot commands after a submit: `status`, `frames`, `list`, `wait`, `download`, `cancel`,
 * `retry` and `delete`.
 */
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { FRAME_STATES, listQuerySchema, SHOT_STATES, type FrameState, type ShotList } from '@celfarm/contract';
import { InputError, TERMINAL_STATES, type FrameFilter } from '../api.ts';
import { listArg, numberArg, type CliContext } from '../context.ts';
import { followShots } from '../follow.ts';
import { clip, duration, json, shellArg, table } from '../format.ts';
import { downloadShot, followOptions, frameTable, reportFinished, shotHeader } from './shot-report.ts';

export function addShotCommands(program: Command, ctx: CliContext): void {
  const status = program
    .command('status')
    .alias('show')
    .description('a shot: name, studio ids, state, progress, ETA, shot QA, output size, settings warnings and a table of its frames')
    .argument('<shot>', 'shot id')
    .option('--json', 'print the shot view and its frames as JSON');
  addFrameFilters(status).action(async (id: string, opts: FrameFilterOptions & { json?: boolean }, cmd: Command) => {
    const api = ctx.api(cmd);
    const [v, frames] = await Promise.all([api.shot(id), api.frames(id, frameFilter(opts))]);
    ctx.io.out(opts.json ? json({ ...v, frames }) : `${shotHeader(v)}\n${frameTable(frames)}`);
  });

  const frames = program
    .command('frames')
    .description("a shot's frames: state, seed, shot QA scores (! past the threshold), review, output or error, earlier takes")
    .argument('<shot>', 'shot id')
    .option('--json', 'print the frames as JSON');
  addFrameFilters(frames).action(async (id: string, opts: FrameFilterOptions & { json?: boolean }, cmd: Command) => {
    const list = await ctx.api(cmd).frames(id, frameFilter(opts));
    ctx.io.out(opts.json ? json(list) : list.length === 0 ? '(no frames)\n' : frameTable(list));
  });

  program
    .command('list')
    .description('shots, newest first (-q: those whose name, studio ids or id contain the text)')
    .option('-q, --search <text>', 'only shots whose name, show, sequence or shot code, or id contain TEXT (case-insensitive)')
    .addOption(new Option('--state <state>', 'only shots in this state').choices(SHOT_STATES))
    .option('--project <id>', 'only shots of this project')
    .option('--limit <n>', 'at most N shots (1–500, default 50)', numberArg('--limit', true))
    .option('--before <cursor>', 'the next page: the cursor a previous list printed')
    .option('--json', 'print the answer as JSON ({shots, next})')
    .action(async (opts: ListOptions, cmd: Command) => {
      const search = opts.search === undefined ? undefined : checkedSearch(opts.search);
      const page = await ctx.api(cmd).shots({ state: opts.state, project: opts.project, limit: opts.limit, before: opts.before, q: search });
      if (opts.json) ctx.io.out(json(page));
      else {
        ctx.io.out(
          page.shots.length === 0
            ? '(no shots)\n'
            : table(
                ['id', 'name', 'state', 'project', 'frames', 'progress', 'ETA', 'created'],
                page.shots.map((s) => [
                  s.id,
                  clip(s.name, NAME_WIDTH),
                  s.state,
                  s.project,
                  `${s.counts.completed}/${s.frameCount}`,
                  `${Math.round(s.progress * 100)}%`,
                  duration(s.etaSeconds),
                  s.createdAt,
                ]),
              ),
        );
      }
      const more = moreHint(page, { ...opts, search });
      if (more) ctx.io.err(more);
    });

  program
    .command('wait')
    .description('follow shots until they finish; exit 0 when all completed, 1 when one failed or was cancelled')
    .argument('<shots...>', 'shot ids')
    .option('--out <dir>', 'then download the outputs, named after the frames (one shot: DIR/sh010_0001.png …; several: DIR/<shot>/…)')
    .option('--poll <s>', 'poll period in seconds', numberArg('--poll'), 0.5)
    .option('--timeout <s>', 'give up after this many seconds (exit 1)', numberArg('--timeout'))
    .option('--quiet', 'no progress output')
    .option('--json', 'print the final shot view(s) as JSON')
    .action(async (ids: string[], opts: { out?: string; poll?: number; timeout?: number; quiet?: boolean; json?: boolean }, cmd: Command) => {
      const api = ctx.api(cmd);
      const views = await followShots(api, ids, followOptions(ctx, opts));
      const frames = await reportFinished(ctx, api, views, opts.json === true, opts.out !== undefined);
      if (!opts.out) return;
      for (const [i, v] of views.entries()) {
        if (v.counts.completed === 0) continue;
        if (!(await downloadShot(ctx, api, v, frames[i]!, views.length === 1 ? opts.out : join(opts.out, v.id)))) ctx.fail();
      }
    });

  program
    .command('download')
    .description("download a shot's outputs to DIR, named after the frames (sh010_0001.jpg → DIR/sh010_0001.png; 00001.png … for unnamed ones); exit 1 when a frame has no output")
    .argument('<shot>', 'shot id')
    .requiredOption('--out <dir>', 'output folder (created when missing)')
    .action(async (id: string, opts: { out: string }, cmd: Command) => {
      const api = ctx.api(cmd);
      const v = await api.shot(id);
      if (!TERMINAL_STATES.includes(v.state)) ctx.io.err(`shot ${v.id} is ${v.state}; downloading the frames finished so far\n`);
      if (!(await downloadShot(ctx, api, v, await api.frames(id), opts.out))) ctx.fail();
    });

  const action = (name: 'cancel' | 'retry', description: string) =>
    program
      .command(name)
      .description(description)
      .argument('<shot>', 'shot id')
      .option('--json', 'print the shot view as JSON')
      .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
        const v = await ctx.api(cmd).shotAction(id, name);
        ctx.io.out(opts.json ? json(v) : `shot ${v.id} ${v.state}\n`);
      });
  action('cancel', 'cancel a shot: queued frames are dropped, active ones stop at their next step');
  action('retry', 'run the failed frames of a finished shot again');

  program
    .command('delete')
    .description('cancel a shot, then delete its objects and records')
    .argument('<shot>', 'shot id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      await ctx.api(cmd).deleteShot(id);
      ctx.io.out(`deleted shot ${id}\n`);
    });
}

interface FrameFilterOptions {
  state?: string[];
  flagged?: boolean;
  needsReview?: boolean;
  approved?: boolean;
}

/** The frame filters of `status` and `frames`: by state, and by shot QA. */
function addFrameFilters(cmd: Command): Command {
  return cmd
    .option('--state <list>', `only frames in these states (comma-separated: ${FRAME_STATES.join(', ')})`, listArg)
    .option('--flagged', 'only frames flagged by shot QA (a score past its threshold)')
    .addOption(new Option('--needs-review', 'only flagged frames not approved yet').conflicts('approved'))
    .option('--approved', 'only frames approved as they are');
}

function frameFilter(opts: FrameFilterOptions): FrameFilter {
  const states: readonly string[] = FRAME_STATES;
  const bad = opts.state?.find((s) => !states.includes(s));
  if (bad !== undefined || opts.state?.length === 0) {
    throw new InputError('INVALID_REQUEST', `states are some of ${FRAME_STATES.join(', ')}${bad !== undefined ? `; got ${bad}` : ''}`, '--state');
  }
  return {
    ...(opts.state ? { state: opts.state as FrameState[] } : {}),
    ...(opts.flagged ? { flagged: true } : {}),
    ...(opts.needsReview ? { review: 'needed' as const } : opts.approved ? { review: 'approved' as const } : {}),
  };
}

interface ListOptions {
  search?: string;
  state?: string;
  project?: string;
  limit?: number;
  before?: string;
  json?: boolean;
}

/** Characters of a shot's name shown in the `list` table. */
const NAME_WIDTH = 40;

/** `--search`, checked as the API checks `q` (1–100 characters, no control characters; trimmed). */
function checkedSearch(text: string): string {
  const parsed = listQuerySchema.shape.q.safeParse(text);
  if (!parsed.success) throw new InputError('INVALID_REQUEST', `${JSON.stringify(text)}: ${parsed.error.issues[0]?.message ?? 'invalid'}`, '--search');
  return parsed.data!;
}

/**
 * The command for the next page whenever the answer has a `next`. A search looks at a bounded
 * number of shots per call (5,000, newest first), so a page shorter than `--limit` may still
 * have a next one: it says so instead of looking like the end.
 */
function moreHint(page: ShotList, opts: ListOptions): string | undefined {
  if (!page.next) return undefined;
  const args = ['celfarm', 'list'];
  if (opts.search !== undefined) args.push('--search', shellArg(opts.search));
  if (opts.state) args.push('--state', opts.state);
  if (opts.project) args.push('--project', shellArg(opts.project));
  if (opts.limit !== undefined) args.push('--limit', String(opts.limit));
  args.push('--before', page.next);
  const short = page.shots.length < (opts.limit ?? listQuerySchema.shape.limit.parse(undefined));
  const why = opts.search !== undefined && short ? 'the search stopped at the shots one call looks at (newest first); search older ones: ' : 'more: ';
  return `${why}${args.join(' ')}\n`;
}
