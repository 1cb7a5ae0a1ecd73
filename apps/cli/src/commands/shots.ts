/**
 * The shot commands after a submit: `status`, `list`, `wait`, `download`, `cancel`, `retry` and
 * `delete`.
 */
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { SHOT_STATES } from '@celfarm/contract';
import { TERMINAL_STATES } from '../api.ts';
import { numberArg, type CliContext } from '../context.ts';
import { followShots } from '../follow.ts';
import { duration, json, table } from '../format.ts';
import { downloadShot, followOptions, frameTable, reportFinished, shotHeader } from './shot-report.ts';

export function addShotCommands(program: Command, ctx: CliContext): void {
  program
    .command('status')
    .description('a shot: state, progress, ETA and a table of its frames')
    .argument('<shot>', 'shot id')
    .option('--json', 'print the shot view as JSON')
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      const api = ctx.api(cmd);
      const [v, frames] = await Promise.all([api.shot(id), api.frames(id)]);
      ctx.io.out(opts.json ? json({ ...v, frames }) : `${shotHeader(v)}\n${frameTable(frames)}`);
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
      const page = await ctx.api(cmd).shots({ state: opts.state, project: opts.project, limit: opts.limit, before: opts.before });
      if (opts.json) {
        ctx.io.out(json(page));
        return;
      }
      ctx.io.out(
        page.shots.length === 0
          ? '(no shots)\n'
          : table(
              ['id', 'state', 'project', 'frames', 'progress', 'ETA', 'created'],
              page.shots.map((s) => [s.id, s.state, s.project, `${s.counts.completed}/${s.frameCount}`, `${Math.round(s.progress * 100)}%`, duration(s.etaSeconds), s.createdAt]),
            ),
      );
      if (page.next) ctx.io.err(`more: celfarm list --before ${page.next}\n`);
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
    .description("download a shot's outputs as DIR/00001.png, 00002.png, … (exit 1 when a frame has no output)")
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
