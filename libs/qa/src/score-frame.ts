/**
 * One entry point for a frame's QA: {@link scoreFrame} returns every score with its threshold and
 * the list of those that flag the frame for review. The reference palette is computed once per shot
 * ({@link referencePalette}); a frame's {@link analyzeFrame} result can be kept to serve as the
 * `previous` of the next frame, so no frame is analysed twice.
 */
import type { Planar } from '@celfarm/pipeline';
import { extractPalette, type Palette, type PaletteEntry } from './palette.ts';
import { detectPolarity, labGrid, maskGrid, regionsOfBits, sketchLineBits, type SketchPolarity } from './raster.ts';
import { flicker, lineFidelityOf, paletteDistance, type FlickerSide } from './scores.ts';

/** The scores of a frame. */
export type ScoreName = 'palette' | 'flickerMean' | 'flickerShare' | 'lineFidelity';

/** Review thresholds, per project; a frame past any of them is flagged. */
export interface QaThresholds {
  /** Palette distance (ΔE00) above which a frame is flagged. Default 6. */
  palette: number;
  /** Mean ΔE00 against the previous frame, over unchanged line art, above which it is flagged. Default 2.5. */
  flickerMean: number;
  /** Share of unchanged line art changing by more than the JND, above which it is flagged. Default 0.05. */
  flickerShare: number;
  /** Share of line pixels kept dark, below which it is flagged. Default 0.8. */
  lineFidelity: number;
}

/** The default thresholds (see README: starting points to calibrate per project). */
export const DEFAULT_THRESHOLDS: Readonly<QaThresholds> = Object.freeze({
  palette: 6,
  flickerMean: 2.5,
  flickerShare: 0.05,
  lineFidelity: 0.8,
});

/** Options of {@link analyzeFrame}, {@link referencePalette} and {@link scoreFrame}. */
export interface QaOptions {
  /**
   * Colour scores read the image as cells of cell×cell pixels (averaged). Default 4: half of the
   * VAE's 8-pixel latent cell, below which colour is not the model's choice but grain.
   */
  cell?: number;
  /**
   * A frame's colour statistics (its palette, flicker's ΔE00) read every `colourStride`-th cell in
   * each direction: with the defaults, one 4×4 cell of each 8×8 latent cell, a quarter of the
   * cells; an approximation of those scores (README: "The grid"). 1 reads every cell. The lines,
   * the regions, which cells flicker measures and line fidelity read every pixel whatever it is.
   * Default 2.
   */
  colourStride?: number;
  /** Which way sketches are drawn; `auto` decides per sketch from its mean grey. Default `auto`. */
  sketchPolarity?: SketchPolarity | 'auto';
  /** Grey level in [0,1] splitting line from paper: dark lines are < it, light lines > 1 − it. Default 0.5. */
  lineThreshold?: number;
  /** Line fidelity: a line pixel is dark only where the output's L* is ≤ this. Default 50. */
  darkL?: number;
  /** Line fidelity: …and this much darker (L*) than the darkest fill within two cells. Default 10. */
  lineContrast?: number;
  /** Line fidelity: pixels of slack around a line pixel to find a dark output pixel. Default 1. */
  lineTolerance?: number;
  /** Dominant colours taken from the output inside the character mask. Default 8. */
  outputColours?: number;
  /** Dominant colours taken from the reference. Default 12. */
  referenceColours?: number;
  /** Flicker: ΔE00 a cell must exceed to count as a noticeable change. Default 2.3. */
  jnd?: number;
  /** Flicker: pixels around lines that differ between the sketches left out (rounded up to cells). Default 8 (one latent cell). */
  changeRadius?: number;
  /** Flicker: least share of the frame measured for a value. Default 0.01. */
  minMeasuredShare?: number;
  /** Thresholds that override {@link DEFAULT_THRESHOLDS}. */
  thresholds?: Partial<QaThresholds>;
}

/** The images of one frame. */
export interface FrameImages {
  /** The colorized output: planar RGB in [−1,1] (the pipeline's output), W×H. */
  output: Planar;
  /**
   * The sketch at the output's size and place (fitted as the pipeline fitted it), in [−1,1], any
   * channel count; either polarity (see {@link QaOptions.sketchPolarity}).
   */
  sketch: Planar;
  /**
   * The character: a [0,1] mask of any size covering the same frame (≥ 0.5 is character), e.g. the
   * sketch mask. Without it, the palette is taken over the whole frame.
   */
  characterMask?: Planar | null;
}

/**
 * What a frame contributes to scores, its own and the next frame's. Keep it to score the next one
 * (made with the same options; typed arrays of about 7 bytes per cell — region labels, and the Lab
 * of the colour sample — 0.26 MB at 768²: not for storage).
 */
export interface FrameAnalysis extends FlickerSide {
  readonly kind: 'frame-analysis';
  polarity: SketchPolarity;
  /** Dominant colours of the output inside the character. */
  palette: Palette;
  /** Line fidelity counts. */
  linePixels: number;
  lineKept: number;
}

/** One score with the threshold it was judged against. */
export interface Score {
  /** Null when it cannot be computed for this frame (no previous frame, nothing to measure). */
  value: number | null;
  threshold: number;
  /** Whether a larger value is worse (`above`) or a smaller one (`below`). */
  worse: 'above' | 'below';
  flagged: boolean;
}

/** The scores of one frame and why it is flagged. */
export interface FrameScores {
  scores: Record<ScoreName, Score>;
  /** Names of the scores past their thresholds, in the order of {@link ScoreName}; empty when the frame passes. */
  flagged: ScoreName[];
  /** Dominant output colours (Lab, shares) inside the character. */
  outputPalette: PaletteEntry[];
  /** Share of the frame over which flicker was measured; null without a previous frame. */
  flickerMeasuredShare: number | null;
  linePixels: number;
  polarity: SketchPolarity;
}

const resolvedCell = (o: QaOptions): number => o.cell ?? 4;
const resolvedStride = (o: QaOptions): number => o.colourStride ?? 2;

/**
 * Everything of one frame the scores need: output colours on the grid (the colour sample), its
 * palette inside the character, the sketch's lines and regions, and the line-fidelity counts. The
 * output and the sketch must have the same W×H. One pass over the sketch (its lines, pooled), one
 * over the sampled cells of the output, and the output around the lines.
 */
export function analyzeFrame(frame: FrameImages, options: QaOptions = {}): FrameAnalysis {
  const { output, characterMask } = frame;
  const W = output.width;
  const H = output.height;
  const { pixels, lineBits, ...side } = flickerSide(frame, options);
  const character = characterMask ? maskGrid(characterMask, W, H, side.cell, 0.5, side.stride) : null;
  const palette = extractPalette(side.lab, character, { colours: options.outputColours ?? 8 });
  const kept = lineFidelityOf(
    output,
    pixels,
    { labels: side.regions.labels, cell: side.cell, lineBits, lab: side.lab, stride: side.stride },
    { darkL: options.darkL, contrast: options.lineContrast, tolerance: options.lineTolerance },
  );
  return { kind: 'frame-analysis', ...side, palette, linePixels: kept.linePixels, lineKept: kept.kept };
}

/** The part of an analysis that flicker needs (all a previous frame given as images needs). */
function flickerSide({ output, sketch }: FrameImages, options: QaOptions): FlickerSide & { polarity: SketchPolarity; pixels: Int32Array; lineBits: Int32Array } {
  const W = output.width;
  const H = output.height;
  if (sketch.width !== W || sketch.height !== H) {
    throw new RangeError(`sketch is ${sketch.width}×${sketch.height}, output is ${W}×${H}: fit the sketch to the output first`);
  }
  const cell = resolvedCell(options);
  const stride = resolvedStride(options);
  const polarity = options.sketchPolarity === undefined || options.sketchPolarity === 'auto' ? detectPolarity(sketch) : options.sketchPolarity;
  // The line pixels are a view of an array the next sketch overwrites: analyzeFrame reads them first.
  const lines = sketchLineBits(sketch, polarity, options.lineThreshold ?? 0.5, cell);
  const lab = labGrid(output, cell, stride);
  const gw = Math.ceil(W / cell);
  const gh = Math.ceil(H / cell);
  return { width: W, height: H, cell, stride, lab, pixels: lines.pixels, lineBits: lines.bits, regions: regionsOfBits(lines.bits, gw, gh), polarity };
}

/**
 * The reference's dominant colours (once per shot), inside its character mask when given (any
 * size, ≥ 0.5 is character), else over the whole reference; from every cell of the grid
 * (`colourStride` is for frames).
 */
export function referencePalette(reference: Planar, mask?: Planar | null, options: QaOptions = {}): Palette {
  const cell = resolvedCell(options);
  const lab = labGrid(reference, cell);
  const m = mask ? maskGrid(mask, reference.width, reference.height, cell) : null;
  return extractPalette(lab, m, { colours: options.referenceColours ?? 12 });
}

const isAnalysis = (f: FrameImages | FrameAnalysis): f is FrameAnalysis => 'kind' in f && f.kind === 'frame-analysis';

/** Inputs of {@link scoreFrame}. */
export interface ScoreFrameInput {
  /** This frame: its images, or its analysis. */
  frame: FrameImages | FrameAnalysis;
  /** The previous frame of the shot (images or analysis); null or absent for the first frame. */
  previous?: FrameImages | FrameAnalysis | null;
  /** The shot's reference palette, from {@link referencePalette}. */
  reference: Palette;
}

/**
 * Scores a frame: palette distance to the reference, flicker against the previous frame (mean ΔE00
 * and share over the JND, where the line art did not change), and line fidelity; each with its
 * threshold, and `flagged` naming those past it. Pure and deterministic.
 */
export function scoreFrame(input: ScoreFrameInput, options: QaOptions = {}): FrameScores {
  const t: QaThresholds = { ...DEFAULT_THRESHOLDS, ...options.thresholds };
  const cur = isAnalysis(input.frame) ? input.frame : analyzeFrame(input.frame, options);
  const prev = input.previous ? (isAnalysis(input.previous) ? input.previous : flickerSide(input.previous, options)) : null;
  const f = prev
    ? flicker(cur, prev, {
        jnd: options.jnd,
        changeRadius: options.changeRadius,
        minMeasuredShare: options.minMeasuredShare,
      })
    : null;
  const score = (value: number | null, threshold: number, worse: 'above' | 'below'): Score => ({
    value,
    threshold,
    worse,
    flagged: value !== null && (worse === 'above' ? value > threshold : value < threshold),
  });
  const scores: Record<ScoreName, Score> = {
    palette: score(paletteDistance(cur.palette, input.reference), t.palette, 'above'),
    flickerMean: score(f ? f.mean : null, t.flickerMean, 'above'),
    flickerShare: score(f ? f.overJnd : null, t.flickerShare, 'above'),
    lineFidelity: score(cur.linePixels > 0 ? cur.lineKept / cur.linePixels : null, t.lineFidelity, 'below'),
  };
  const names: ScoreName[] = ['palette', 'flickerMean', 'flickerShare', 'lineFidelity'];
  return {
    scores,
    flagged: names.filter((name) => scores[name].flagged),
    outputPalette: cur.palette.entries,
    flickerMeasuredShare: f ? f.measuredShare : null,
    linePixels: cur.linePixels,
    polarity: cur.polarity,
  };
}
