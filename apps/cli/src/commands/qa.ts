/**
 * Shot QA: `approve` frames as they are, `rerender` one with another seed (its take is kept), and
 * `qa thresholds`, the project's thresholds. The scores themselves are in `status` and `frames`.
 */
import { Option, type Command } from 'commander';
import { rerenderRequestSchema, type FrameView, type QaThresholdsView } from '@celfarm/contract';
import { MAX_SEED } from '@celfarm/pipeline/settings-schema';
import { ApiError, InputError } from '../api.ts';
import { EXIT, listArg, numberArg, type CliContext } from '../context.ts';
import { followShots } from '../follow.ts';
import { errorText, json, table } from '../format.ts';
import { parseThresholds, QA_SCORES, rangeText, SCORE_INFO } from '../qa.ts';
import { followOptions, frameTable, qaSummary, reportFinished } from './shot-report.ts';

/** Frames one `approve` may name (a range like `1-5000` is a typo more often than a wish). */
const MAX_FRAMES_PER_CALL = 10_000;

export function addQaCommands(program: Command, ctx: CliContext): void {
  program
    .command('approve')
    .description('approve frames as they are: they no longer need review (their scores and flags stay); idempotent')
    .argument('<shot>', 'shot id')
    .argument('<frames...>', 'frame numbers, or ranges (3 5-8)')
    .option('--json', 'print the approved frame(s) as JSON')
    .action(async (id: string, specs: string[], opts: { json?: boolean }, cmd: Command) => {
      const numbers = frameNumbers(specs);
      const api = ctx.api(cmd);
      const shot = await api.shot(id);
      const outside = numbers.find((n) => n > shot.frameCount);
      if (outside !== undefined) throw new InputError('INVALID_REQUEST', `no frame ${outside}: shot ${shot.id} has ${shot.frameCount}`, 'frames');
      const approved: FrameView[] = [];
      for (const n of numbers) {
        try {
          approved.push(await api.approve(id, n));
        } catch (e) {
          // A frame that is not completed is refused on its own; the others are still approved.
          if (!(e instanceof ApiError && e.code === 'STATE_CONFLICT')) throw e;
          ctx.io.err(`error ${errorText(e)}\n`);
          ctx.fail(EXIT.BAD_INPUT);
          continue;
        }
        const f = approved.at(-1)!;
        const flags = f.qa?.flagged.length ? ` (flagged ${f.qa.flagged.join(', ')})` : '';
        if (!opts.json) ctx.io.out(`frame ${f.frame} ${f.fileName} approved${flags}\n`);
      }
      if (opts.json) ctx.io.out(json(approved.length === 1 && numbers.length === 1 ? approved[0] : approved));
      const after = await api.shot(id);
      ctx.io.err(`shot ${after.id}: ${qaSummary(after)}\n`);
    });

  program
    .command('rerender')
    .description('render one frame of a finished shot again with another seed (a new round); the take it replaces is kept')
    .argument('<shot>', 'shot id')
    .argument('<frame>', 'frame number')
    .option('--seed <n>', `the new take's seed, 0–${MAX_SEED} (default: a random one)`, numberArg('--seed', true))
    .option('--wait', 'follow the shot until it finishes, then print the frame (exit 1 when it fails)')
    .option('--poll <s>', 'poll period in seconds while waiting', numberArg('--poll'), 0.5)
    .option('--timeout <s>', 'stop waiting after this many seconds (exit 1)', numberArg('--timeout'))
    .option('--quiet', 'no progress output')
    .option('--json', 'print the shot view and the frame as JSON')
    .action(async (id: string, spec: string, opts: RerenderOptions, cmd: Command) => {
      const frame = frameNumber(spec);
      if (!rerenderRequestSchema.safeParse({ seed: opts.seed }).success) {
        throw new InputError('INVALID_REQUEST', `${opts.seed}: a seed is 0–${MAX_SEED}`, '--seed');
      }
      const api = ctx.api(cmd);
      const v = await api.rerender(id, frame, opts.seed);
      const f = await api.frame(id, frame);
      ctx.io.err(`shot ${v.id} ${v.state} (round ${v.round}): frame ${frame} ${f.fileName} renders again with seed ${f.seed}; its earlier take is kept\n`);
      if (!opts.wait) {
        ctx.io.out(opts.json ? json({ ...v, frames: [f] }) : `${v.id}\n`);
        return;
      }
      const [final] = await followShots(api, [v.id], followOptions(ctx, opts));
      const again = await api.frame(id, frame);
      if (opts.json) ctx.io.out(json({ ...final!, frames: [again] }));
      else ctx.io.out(frameTable([again]));
      await reportFinished(ctx, api, [final!], false, false);
    });

  const qa = program.command('qa').description('shot QA settings of your project');
  qa.command('thresholds')
    .description(
      "the project's shot QA thresholds: what it set and what applies to shots submitted now (a submit's --qa-threshold overrides them); " +
        '--set or --clear changes them (admin scope; shots already submitted keep theirs)',
    )
    .addOption(
      new Option('--set <name=value,…>', `replace what the project set with these (${QA_SCORES.join(', ')}); repeatable`)
        .argParser((v: string, prev: string[] = []) => [...prev, ...listArg(v)])
        .conflicts('clear'),
    )
    .option('--clear', 'clear what the project set (the farm-wide thresholds apply again)')
    .option('--json', 'print the answer as JSON ({project, effective})')
    .action(async (opts: { set?: string[]; clear?: boolean; json?: boolean }, cmd: Command) => {
      const api = ctx.api(cmd);
      let view: QaThresholdsView;
      if (opts.set !== undefined || opts.clear) {
        const thresholds = parseThresholds(opts.set ?? [], '--set');
        if (opts.set !== undefined && Object.keys(thresholds).length === 0) throw new InputError('INVALID_REQUEST', 'give name=value, e.g. palette=8 (or --clear)', '--set');
        view = await api.setQaThresholds(thresholds);
        ctx.io.err('shots submitted from now on are judged against these; shots already submitted keep theirs\n');
      } else view = await api.qaThresholds();
      ctx.io.out(opts.json ? json(view) : thresholdsTable(view));
    });
}

interface RerenderOptions {
  seed?: number;
  wait?: boolean;
  poll?: number;
  timeout?: number;
  quiet?: boolean;
  json?: boolean;
}

/** Each score: what the project set, what applies, and when it flags a frame. */
function thresholdsTable(view: QaThresholdsView): string {
  return table(
    ['score', 'project', 'effective', 'flagged'],
    QA_SCORES.map((s) => [s, view.project[s], view.effective[s], `${SCORE_INFO[s].worse} (${rangeText(s)})`]),
  );
}

function frameNumber(spec: string, field = 'frame'): number {
  const n = /^\d+$/.test(spec.trim()) ? Number(spec) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new InputError('INVALID_REQUEST', `${JSON.stringify(spec)} is not a frame number (1, 2, …)`, field);
  return n;
}

/** `['3', '5-7']` → `[3, 5, 6, 7]`: frame numbers and ranges, in order, each once. */
function frameNumbers(specs: readonly string[]): number[] {
  const numbers = new Set<number>();
  for (const spec of specs.flatMap(listArg)) {
    const range = /^(\d+)-(\d+)$/.exec(spec.trim());
    const [from, to] = range ? [frameNumber(range[1]!, 'frames'), frameNumber(range[2]!, 'frames')] : [frameNumber(spec, 'frames'), frameNumber(spec, 'frames')];
    if (to < from) throw new InputError('INVALID_REQUEST', `${spec}: a range goes up (5-8)`, 'frames');
    if (to - from >= MAX_FRAMES_PER_CALL) throw new InputError('INVALID_REQUEST', `${spec}: at most ${MAX_FRAMES_PER_CALL} frames per call`, 'frames');
    for (let n = from; n <= to; n++) numbers.add(n);
  }
  return [...numbers];
}
