/**
 * @celfarm/qa — shot QA scores for colorized frames: palette fidelity against the reference,
 * flicker against the previous frame where the line art did not change, and line fidelity, in
 * CIELAB with CIEDE2000. Pure functions over the pipeline's planar images; no I/O.
 * Definitions, ranges, thresholds and cost: README.md of this package.
 */
export { deltaE00, deltaE00Reference } from './ciede2000.ts';
export { labImage, labToSrgb, planarToLab, rgb8ToLab, srgbToLab, type LabImage } from './lab.ts';
export { extractPalette, type Palette, type PaletteEntry, type PaletteOptions } from './palette.ts';
export { framePalette, lockPalette, type PaletteLockOptions, type PaletteLockResult, type PaletteShift } from './palette-lock.ts';
export {
  detectPolarity,
  dilate,
  labGrid,
  lineMap,
  maskGrid,
  poolAny,
  regions,
  regionsOfBits,
  sketchLineBits,
  sketchLines,
  type Regions,
  type SketchLines,
  type SketchPolarity,
} from './raster.ts';
export {
  flicker,
  lineFidelity,
  lineFidelityOf,
  paletteDistance,
  type FlickerCount,
  type FlickerOptions,
  type FlickerSide,
  type LineContext,
  type LineCount,
  type LineFidelityOptions,
} from './scores.ts';
export {
  analyzeFrame,
  DEFAULT_THRESHOLDS,
  referencePalette,
  scoreFrame,
  type FrameAnalysis,
  type FrameImages,
  type FrameScores,
  type QaOptions,
  type QaThresholds,
  type Score,
  type ScoreFrameInput,
  type ScoreName,
} from './score-frame.ts';
