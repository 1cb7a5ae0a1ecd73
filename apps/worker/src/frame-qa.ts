/**
 * Shot QA in the worker (libs/qa): palette and line fidelity of a frame as it completes, flicker
 * of each pair of neighbouring frames once both are completed, on the frame records, with
 * `frame.flagged` and `celfarm_frames_flagged_total` when a frame first passes a threshold.
 *
 * Frames render in parallel on different workers, so the pair (k−1, k) is scored by whichever of
 * the two completes last: each worker records its frame `completed` first and then looks at the
 * neighbours, so at least one of the two sees the other completed (both may; the write is guarded
 * and the values are the same). Flicker is written on the later frame of the pair. The neighbour's
 * output and sketch are read back from the object store (two GETs and two PNG decodes).
 *
 * Scores are computed on this (the BullMQ) thread, not the inference thread (the GPU's feeder,
 * which meanwhile renders the next frame): at 768² a few ms for the frame's own scores
 * (bench/qa/run.ts) and, for a pair read back, mostly its two PNG decodes (bench/qa/worker.ts), in
 * synchronous stretches of milliseconds between awaits, far below the lock renewal period. Every image the scores read is the one another worker would read: the output as stored
 * (8-bit), the sketch fitted as the pipeline fits it, so a pair scored anywhere gives the same
 * numbers.
 */
import { QA_SCORES, type Consistency, type FrameQa, type FrameRecord, type QaScoreName, type ShotRecord, type ShotStore } from '@celfarm/jobs';
import type { FarmMetrics } from '@celfarm/metrics';
import { crop, decodeImage, fitLetterbox, planar, preprocessSketch, rgb8ToPlanar, type Box, type Planar, type ResolvedSettings } from '@celfarm/pipeline';
import {
  analyzeFrame,
  DEFAULT_THRESHOLDS,
  framePalette,
  lineMap,
  referencePalette,
  scoreFrame,
  type FrameAnalysis,
  type FrameImages,
  type FrameScores,
  type Palette,
  type QaOptions,
} from '@celfarm/qa';
import { shotKeys, type ObjectStore } from '@celfarm/storage';
import { publishAbout, type FarmEvents } from './farm-events.ts';
import { fetchInput } from './images.ts';
import { Lru } from './lru.ts';

export interface FrameQaDeps {
  store: ShotStore;
  objects: ObjectStore;
  metrics: FarmMetrics;
  events?: FarmEvents;
  /** Object key prefix (S3_PREFIX). */
  objectPrefix: string;
  /** Largest accepted input image, width × height (MAX_PIXELS). */
  maxPixels: number;
  /** Scoring options and thresholds (libs/qa); default: its defaults. */
  options?: QaOptions;
  /** Shots whose reference palette is kept in memory (default 8). */
  referenceCacheSize?: number;
}

/** A frame just rendered, as the scores read it. */
export interface RenderedFrame {
  /** The output as stored: 8-bit values (the PNG's pixels) in [−1, 1]. */
  output: Planar;
  /** The sketch at the output's size and place ({@link sketchAtOutput}). */
  sketch: Planar;
  /** The soft sketch mask at latent size over the H×W canvas, when split attention ran. */
  sketchMask: Planar | null;
  /** Where the sketch sits on the canvas (the letterbox), for a cropped output. */
  box: Box;
}

/** The scores a frame's own completion brings; the first frame's flicker is known then too (there is none). */
const OWN: readonly QaScoreName[] = ['palette', 'lineFidelity'];
const FLICKER: readonly QaScoreName[] = ['flickerMean', 'flickerShare'];
const NO_PALETTE: Palette = { entries: [], pixels: 0 };

export class FrameQaScorer {
  private readonly options: QaOptions;
  /** Reference palettes by shot id. */
  private readonly references: Lru<string, Palette>;
  /** Palettes of approved frames by shot, frame and take (palette lock `approved`). */
  private readonly approved: Lru<string, Palette>;

  constructor(private readonly deps: FrameQaDeps) {
    // The sketches scored here are in the model convention (white lines on black), always.
    this.options = { ...deps.options, sketchPolarity: 'light-lines' };
    this.references = new Lru(deps.referenceCacheSize ?? 8);
    this.approved = new Lru(deps.referenceCacheSize ?? 8);
  }

  /**
   * The scores of a frame just rendered: palette and line fidelity (and for the first frame its
   * flicker: none), to merge into its record with {@link withScores}; and its analysis, which
   * scores its neighbours' flicker without reading it back.
   */
  async own(shot: ShotRecord, frame: number, r: RenderedFrame): Promise<{ qa: FrameQa; analysis: FrameAnalysis }> {
    const reference = await this.referencePalette(shot);
    const s = shot.settings;
    const analysis = analyzeFrame(
      { output: r.output, sketch: r.sketch, characterMask: r.sketchMask && (s.crop ? cropMask(r.sketchMask, s, r.box) : r.sketchMask) },
      this.options,
    );
    const scores = scoreFrame({ frame: analysis, previous: null, reference }, this.judgedFor(shot));
    return { qa: part(scores, frame === 1 ? QA_SCORES : OWN), analysis };
  }

  /**
   * Scores flicker for the pairs (k−1, k) and (k, k+1) around `frame` whose frames are both
   * completed and which are not scored yet. `analysis` is the frame's own, when this worker just
   * rendered it; otherwise it is read back like a neighbour.
   */
  async pairs(shot: ShotRecord, frame: number, analysis?: FrameAnalysis): Promise<void> {
    const { store } = this.deps;
    const [prev, cur, next] = await Promise.all([
      frame > 1 ? store.frame(shot.id, frame - 1) : null,
      store.frame(shot.id, frame),
      frame < shot.frameCount ? store.frame(shot.id, frame + 1) : null,
    ]);
    if (cur?.state !== 'completed') return;
    let mine: FrameAnalysis | undefined = analysis;
    const own = async () => (mine ??= analyzeFrame(await this.imagesOf(shot, cur), this.options));
    if (prev?.state === 'completed' && !hasFlicker(cur)) {
      await this.recordFlicker(shot, frame, this.flicker(shot, await own(), await this.imagesOf(shot, prev)));
    }
    if (next?.state === 'completed' && !hasFlicker(next)) {
      const later = analyzeFrame(await this.imagesOf(shot, next), this.options);
      await this.recordFlicker(shot, next.frame, this.flicker(shot, later, await own()));
    }
  }

  /**
   * The flicker of `later` against `earlier`, always in that order (so that whichever worker scores
   * a pair gets the same numbers). Outputs of different sizes (cropped letterboxes of sketches of
   * different shapes) are not comparable: null.
   */
  private flicker(shot: ShotRecord, later: FrameAnalysis, earlier: FrameAnalysis | FrameImages): FrameQa {
    const [w, h] = 'kind' in earlier ? [earlier.width, earlier.height] : [earlier.output.width, earlier.output.height];
    const options = this.judgedFor(shot);
    if (w === later.width && h === later.height) return part(scoreFrame({ frame: later, previous: earlier, reference: NO_PALETTE }, options), FLICKER);
    const thresholds = { ...DEFAULT_THRESHOLDS, ...options.thresholds };
    return {
      scores: { flickerMean: null, flickerShare: null },
      flickerMeasuredShare: null,
      thresholds: { flickerMean: thresholds.flickerMean, flickerShare: thresholds.flickerShare },
      flagged: [],
    };
  }

  /**
   * The scoring options with the thresholds the shot was submitted with (resolved at submit:
   * request, project, QA_THRESHOLDS), over this worker's; shots from before keep the defaults.
   */
  private judgedFor(shot: ShotRecord): QaOptions {
    return shot.qaThresholds ? { ...this.options, thresholds: { ...this.options.thresholds, ...shot.qaThresholds } } : this.options;
  }

  /**
   * After a write of `after` (whose QA was `before`): the reasons it added count in
   * `celfarm_frames_flagged_total`, and a flagged frame is announced (`frame.flagged`, which the
   * bus publishes once per frame and round: with the scores of the first announcement).
   */
  async recorded(shot: ShotRecord, before: FrameQa | undefined, after: FrameRecord): Promise<void> {
    const flagged = after.qa?.flagged ?? [];
    for (const reason of flagged) {
      if (!before?.flagged.includes(reason)) this.deps.metrics.framesFlagged.inc({ project: shot.project, reason });
    }
    await this.announce(shot, after);
  }

  /**
   * `frame.flagged` of a flagged frame (a no-op when it went out before: the bus publishes it
   * once per frame and round). Also when a job runs again for a frame completed by a worker that
   * died before announcing it.
   */
  async announce(shot: ShotRecord, after: FrameRecord): Promise<void> {
    const flagged = after.qa?.flagged ?? [];
    if (flagged.length === 0 || !after.qa) return;
    const { scores, thresholds } = after.qa;
    const data = { ...(after.fileName ? { fileName: after.fileName } : {}), ...(after.output ? { output: after.output } : {}), flagged, scores, thresholds };
    await publishAbout(this.deps.events, 'frame.flagged', shot, data, after.frame);
  }

  /**
   * Flicker on the later frame of a pair: written once (a pair already scored is left as it is).
   * An approval made against another take of the earlier frame (a re-render replaced it) does not
   * cover this pair: past a flicker threshold now, the frame needs review again.
   */
  private async recordFlicker(shot: ShotRecord, frame: number, flicker: FrameQa): Promise<void> {
    let before: FrameQa | undefined;
    const written = await this.deps.store.setFrame(
      shot.id,
      frame,
      (cur) => {
        before = cur.qa;
        const qa = withScores(cur.qa, flicker);
        const flickers = qa.flagged.some((n) => FLICKER.includes(n));
        return { qa, ...(cur.review?.state === 'approved' && flickers ? { review: undefined } : {}) };
      },
      (cur) => cur.state === 'completed' && !hasFlicker(cur),
    );
    if (written) await this.recorded(shot, before, written);
  }

  /** A completed frame's output and sketch, read back from the object store. */
  private async imagesOf(shot: ShotRecord, f: FrameRecord): Promise<FrameImages> {
    const { objects, maxPixels } = this.deps;
    const sketchKey = shot.inputs.frames[f.frame - 1];
    if (!f.output || !sketchKey) throw new Error(`shot ${shot.id} frame ${f.frame} has no ${f.output ? 'sketch' : 'output'} to score`);
    const field = `frames[${f.frame - 1}]`;
    const [output, sketch] = await Promise.all([
      fetchInput(objects, f.output, 'output').then((b) => decodeImage(b, 'output', { maxPixels })),
      fetchInput(objects, sketchKey, field).then((b) => decodeImage(b, field, { maxPixels })),
    ]);
    return { output, sketch: sketchAtOutput(sketch, shot.settings) };
  }

  /**
   * The palette a frame's output is locked to (Consistency `paletteLock`): the reference's, or with
   * `approved` the nearest approved frame's — the closest before it, else after it — read back
   * once per take; the reference's when none is approved.
   */
  async lockTarget(shot: ShotRecord, frame: number, lock: Exclude<Consistency['paletteLock'], 'off'>): Promise<Palette> {
    if (lock === 'approved') {
      const approved = (f: FrameRecord) => f.state === 'completed' && f.review?.state === 'approved' && !!f.output;
      const { store } = this.deps;
      const source = (await store.nearestFrame(shot.id, frame - 1, -1, shot.frameCount, approved)) ?? (await store.nearestFrame(shot.id, frame + 1, 1, shot.frameCount, approved));
      if (source) {
        const key = `${shot.id}/${source.frame}/${source.take ?? 0}`;
        const cached = this.approved.get(key);
        if (cached) return cached;
        const { output, sketch } = await this.imagesOf(shot, source);
        const palette = framePalette(output, lineMap(sketch, 'light-lines', this.options.lineThreshold ?? 0.5), this.options.referenceColours ?? 12);
        this.approved.set(key, palette);
        return palette;
      }
    }
    return this.referencePalette(shot);
  }

  /** Once per shot and worker (two frames of a shot starting together may both load it). */
  private async referencePalette(shot: ShotRecord): Promise<Palette> {
    const cached = this.references.get(shot.id);
    if (cached) return cached;
    const palette = await this.loadReferencePalette(shot);
    this.references.set(shot.id, palette);
    return palette;
  }

  /** The reference's dominant colours, inside the reference mask prepare stored (when the mode made one). */
  private async loadReferencePalette(shot: ShotRecord): Promise<Palette> {
    const { objects, maxPixels } = this.deps;
    const [bytes, maskBytes] = await Promise.all([
      fetchInput(objects, shot.inputs.reference, 'reference'),
      objects.get(shotKeys(this.deps.objectPrefix, shot.project, shot.id).referenceMask),
    ]);
    const reference = await decodeImage(bytes, 'reference', { maxPixels });
    const mask = maskBytes ? unitMask(await decodeImage(maskBytes, 'reference mask', { maxPixels })) : null;
    return referencePalette(reference, mask, this.options);
  }
}

/** Merges scores into a frame's QA: those of `next` replace their namesakes, the others stay. */
export function withScores(cur: FrameQa | undefined, next: FrameQa & { names?: readonly QaScoreName[] }): FrameQa {
  const names = next.names ?? (Object.keys(next.scores) as QaScoreName[]);
  const flagged = QA_SCORES.filter((n) => (names.includes(n) ? next.flagged : (cur?.flagged ?? [])).includes(n));
  const measured = next.flickerMeasuredShare !== undefined ? next.flickerMeasuredShare : cur?.flickerMeasuredShare;
  return {
    scores: { ...cur?.scores, ...next.scores },
    ...(measured !== undefined ? { flickerMeasuredShare: measured } : {}),
    thresholds: { ...cur?.thresholds, ...next.thresholds },
    flagged,
  };
}

/** Whether the flicker of this frame against the previous one has been scored (null counts: it was). */
const hasFlicker = (f: FrameRecord): boolean => f.qa?.scores.flickerMean !== undefined;

/** The named scores of a scoring, as a frame's QA. */
function part(s: FrameScores, names: readonly QaScoreName[]): FrameQa & { names: readonly QaScoreName[] } {
  const scores: FrameQa['scores'] = {};
  const thresholds: FrameQa['thresholds'] = {};
  for (const n of names) {
    scores[n] = s.scores[n].value;
    thresholds[n] = s.scores[n].threshold;
  }
  return {
    names,
    scores,
    ...(names.includes('flickerMean') ? { flickerMeasuredShare: s.flickerMeasuredShare } : {}),
    thresholds,
    flagged: s.flagged.filter((n) => names.includes(n)),
  };
}

/**
 * The sketch at the output's size and place, as the pipeline fits it: in the model convention
 * (negated, unless the shot says its sketches already are), letterboxed into the canvas, cropped
 * like the output. The webui inversion and the line extractors are not run again: their lines are
 * the drawing's, and an extractor would cost an inference.
 */
export function sketchAtOutput(sketch: Planar, s: Pick<ResolvedSettings, 'preprocessor' | 'height' | 'width' | 'crop'>): Planar {
  const model = preprocessSketch(sketch, s.preprocessor === 'none' ? 'none' : 'invert');
  // A sketch of the canvas size fits as itself (the resize is the identity, bit for bit but for
  // the sign of zero; tested) and crops to itself: the ~20–40 ms resize at 768² is skipped.
  if (model.width === s.width && model.height === s.height) return model;
  const fitted = fitLetterbox(model, s.height, s.width);
  return s.crop ? crop(fitted.image, fitted.box) : fitted.image;
}

/** Each 8-bit sample's value as decodeImage reads it back ((v/255 − 0.5)/0.5 in float32), by the pipeline's own conversion. */
const FROM_8BIT = rgb8ToPlanar(Uint8Array.from({ length: 256 }, (_, v) => v), 256, 1, 1).data;

/**
 * The output as stored: interleaved 8-bit RGB (what the PNG holds) back to planar [−1, 1], equal
 * to decoding the PNG, without decoding it (a table lookup per sample).
 */
export function storedOutput(rgb8: Uint8Array, width: number, height: number): Planar {
  const n = width * height;
  if (rgb8.length !== 3 * n) throw new RangeError(`expected ${3 * n} bytes, got ${rgb8.length}`);
  const out = planar(3, height, width);
  const d = out.data;
  for (let i = 0; i < n; i++) {
    d[i] = FROM_8BIT[rgb8[3 * i]!]!;
    d[n + i] = FROM_8BIT[rgb8[3 * i + 1]!]!;
    d[2 * n + i] = FROM_8BIT[rgb8[3 * i + 2]!]!;
  }
  return out;
}

/** A canvas-wide latent mask cut to the cropped output (nearest neighbour, at the output's size). */
function cropMask(mask: Planar, s: Pick<ResolvedSettings, 'height' | 'width'>, box: Box): Planar {
  const out = planar(1, box.height, box.width);
  for (let y = 0; y < box.height; y++) {
    const my = Math.min(mask.height - 1, Math.floor(((box.top + y + 0.5) * mask.height) / s.height));
    for (let x = 0; x < box.width; x++) {
      const mx = Math.min(mask.width - 1, Math.floor(((box.left + x + 0.5) * mask.width) / s.width));
      out.data[y * box.width + x] = mask.data[my * mask.width + mx]!;
    }
  }
  return out;
}

/** A mask stored as a PNG (0 black … 1 white), decoded to [−1, 1], back in [0, 1]. */
function unitMask(decoded: Planar): Planar {
  const n = decoded.width * decoded.height;
  const out = planar(1, decoded.height, decoded.width);
  for (let i = 0; i < n; i++) out.data[i] = (decoded.data[i]! + 1) / 2;
  return out;
}
