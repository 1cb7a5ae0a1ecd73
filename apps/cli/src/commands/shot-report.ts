/**
 * What the shot commands print about shots: the header and frame table of `status` (with shot
 * QA's scores, review markers and the frames' earlier takes), the summary once followed shots
 * finish, and downloads. Frames come from the API's frame pages, read when a command needs them
 * (never on every poll).
 */
import type { ResolvedSettings } from '@celfarm/contract';
import type { CelfarmApi, FrameView, ShotView } from '../api.ts';
import type { CliContext } from '../context.ts';
import { downloadOutputs, progressLine, type FollowOptions } from '../follow.ts';
import { duration, errorText, json, reviewMarker, scoreCell, table, thresholdsText, warningText } from '../format.ts';
import { QA_SCORES, SCORE_INFO } from '../qa.ts';

/** Where the output size came from, in words. */
const SIZE_FROM: Record<ResolvedSettings['sizeFrom'], string> = {
  request: 'as requested (--width/--height)',
  frames: "from the frames' size",
  pack: "the pack's default (no frame was known yet)",
};

/** Settings the header shows on lines of their own. */
const OWN_LINES = new Set(['width', 'height', 'sizeFrom', 'seed']);

/** The studio ids of a shot, labelled: `show ABC · sequence sq01 · shot sh010`. */
const labelledIds = (ids: ShotView['externalIds']): string =>
  (['show', 'sequence', 'shot'] as const)
    .flatMap((k) => (ids?.[k] ? [`${k} ${ids[k]}`] : []))
    .join(' · ');

export function shotHeader(v: ShotView): string {
  const counts = Object.entries(v.counts)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}`)
    .join(', ');
  const knobs = Object.fromEntries(Object.entries(v.settings).filter(([k]) => !OWN_LINES.has(k)));
  const ids = labelledIds(v.externalIds);
  const lines = [
    `shot      ${v.id} (${v.project})`,
    `name      ${v.name}`,
    ...(ids ? [`studio    ${ids}`] : []),
    `state     ${v.state}${v.round ? ` (round ${v.round})` : ''}${v.awaitingUploads ? ', awaiting uploads' : ''}`,
    `frames    ${v.frameCount}${counts ? `: ${counts}` : ''}`,
    `progress  ${Math.round(v.progress * 100)}%, ETA ${duration(v.etaSeconds)}`,
    `qa        ${qaSummary(v)}`,
    ...(v.consistency ? [`keep      ${consistencyText(v.consistency)}`] : []),
    `size      ${v.settings.width}×${v.settings.height}, ${SIZE_FROM[v.settings.sizeFrom]}`,
    `settings  ${JSON.stringify(knobs)} seed ${v.seed}, priority ${v.priority}`,
    ...v.warnings.map((w) => `warning   ${warningText(w)}`),
    `created   ${v.createdAt}, updated ${v.updatedAt}`,
  ];
  if (v.error) lines.push(`error     ${errorText(v.error)}`);
  return `${lines.join('\n')}\n`;
}

/** `shared noise, palette lock reference, reference chain approved`: what the shot does to keep its frames alike. */
export function consistencyText(c: NonNullable<ShotView['consistency']>): string {
  const parts = [
    ...(c.sharedNoise ? ['shared noise'] : []),
    ...(c.paletteLock !== 'off' ? [`palette lock ${c.paletteLock}`] : []),
    ...(c.referenceChain !== 'off' ? [`reference chain ${c.referenceChain}${c.chainLink ? ` (links of ${c.chainLink})` : ''}`] : []),
  ];
  return parts.join(', ') || 'nothing';
}

/** `flagged 2, needs review 1; flagged when palette > 6, …`: a shot's QA counts and the thresholds its frames are judged against. */
export function qaSummary(v: Pick<ShotView, 'flagged' | 'needsReview' | 'qaThresholds'>): string {
  const judged = v.qaThresholds ? `flagged when ${thresholdsText(v.qaThresholds)}` : 'the default thresholds';
  return `flagged ${v.flagged}, needs review ${v.needsReview}; ${judged}`;
}

type FrameTake = NonNullable<FrameView['takes']>[number];

/** An earlier take of a frame, on one line under the frame's row. */
function takeLine(t: FrameTake): string {
  const scores = QA_SCORES.flatMap((s) => {
    const cell = scoreCell(t.qa, s);
    return cell === undefined ? [] : [`${SCORE_INFO[s].column} ${cell}`];
  });
  const review = t.review?.state === 'approved' ? 'approved' : t.qa?.flagged.length ? 'flagged' : undefined;
  return `  earlier take (round ${t.round}): ${[`seed ${t.seed}`, ...scores, ...(review ? [review] : []), `replaced ${t.replacedAt}`, t.output].join(', ')}`;
}

/**
 * The frames as a table: state, sampler position, seed, shot QA's scores (`!`: past the
 * threshold) and review (`needs review`, `approved`), the output or the error; each earlier take
 * of a frame (a re-render) on a line of its own under it.
 */
export function frameTable(frames: readonly FrameView[]): string {
  const rows = table(
    ['frame', 'file', 'state', 'stage', 'step', 'attempts', 'worker', 'seed', ...QA_SCORES.map((s) => SCORE_INFO[s].column), 'review', 'output / error'],
    frames.map((f) => [
      f.frame,
      f.fileName,
      f.state,
      f.stage,
      f.step !== undefined && f.steps ? `${f.step}/${f.steps}` : undefined,
      f.attempts,
      f.worker,
      f.seed,
      ...QA_SCORES.map((s) => scoreCell(f.qa, s)),
      reviewMarker(f),
      f.error ? errorText(f.error) : f.output,
    ]),
  ).split('\n');
  const lines = [rows[0]!];
  for (const [i, f] of frames.entries()) lines.push(rows[i + 1]!, ...(f.takes ?? []).map(takeLine));
  return `${lines.join('\n')}\n`;
}

/** The follow loop's options from a command's `--poll`, `--timeout` and `--quiet`. */
export function followOptions(ctx: CliContext, opts: { poll?: number; timeout?: number; quiet?: boolean }): FollowOptions {
  return {
    pollMs: (opts.poll ?? 0.5) * 1000,
    ...(opts.timeout !== undefined ? { timeoutMs: opts.timeout * 1000 } : {}),
    quiet: opts.quiet === true,
    log: ctx.io.err,
  };
}

/**
 * Reports shots that finished following: with `asJson` each view and its frames on stdout; on
 * stderr the shot's and its failed frames' errors. Exit 1 unless every shot completed. Returns
 * the frames it read per shot: all of them when `allFrames` (or `asJson`), else the failed ones.
 */
export async function reportFinished(ctx: CliContext, api: CelfarmApi, views: ShotView[], asJson: boolean, allFrames: boolean): Promise<FrameView[][]> {
  const frames = await Promise.all(
    views.map((v) => (asJson || allFrames ? api.frames(v.id) : v.counts.failed > 0 ? api.frames(v.id, { state: ['failed'] }) : Promise.resolve([]))),
  );
  if (asJson) {
    const shown = views.map((v, i) => ({ ...v, frames: frames[i] }));
    ctx.io.out(json(shown.length === 1 ? shown[0] : shown));
  }
  for (const [i, v] of views.entries()) {
    // Without a TTY the follow loop has already printed this line.
    if (process.stderr.isTTY) ctx.io.err(`${progressLine(v)}\n`);
    if (v.error) ctx.io.err(`  error ${errorText(v.error)}\n`);
    for (const f of frames[i]!) {
      // Errors about the frame's image name its file already; others (a runtime failure) do not.
      const file = f.error?.message.includes(f.fileName) ? '' : ` ${f.fileName}`;
      if (f.error) ctx.io.err(`  frame ${f.frame}${file}: ${errorText(f.error)}\n`);
    }
  }
  if (views.some((v) => v.state !== 'completed')) ctx.fail();
  return frames;
}

/** Downloads the outputs among a shot's `frames` to `out`, saying what it wrote; false when a frame has none. */
export async function downloadShot(ctx: CliContext, api: CelfarmApi, v: ShotView, frames: readonly FrameView[], out: string): Promise<boolean> {
  const { files, missing } = await downloadOutputs(api, frames, out);
  for (const f of files) ctx.io.out(`${f}\n`);
  ctx.io.err(`wrote ${files.length} output${files.length === 1 ? '' : 's'} of shot ${v.id} to ${out}\n`);
  if (missing.length) ctx.io.err(`no output for ${missing.length} frame${missing.length === 1 ? '' : 's'}: ${missing.join(', ')}\n`);
  return missing.length === 0;
}
