/**
 * Sketch polarity (contract §1 G10 "Non-model preprocessors" and §6): the UNet and the control
 * encoder expect the model-sketch convention, white lines (+1) on black (−1).
 */
import { PipelineError } from '../errors.ts';
import { planar } from './tensor.ts';
import type { Planar } from './tensor.ts';

/** The non-model sketch preprocessors handled here; "extract" runs a G10 graph elsewhere. */
export type SketchPreprocessor = 'invert' | 'none';

/**
 * Turns a normalised [−1,1] drawing into the model-sketch convention: `invert` (the app default)
 * negates an ordinary black-on-white drawing; `none` uses it as is (already white on black).
 * Always returns a new Planar. An unknown preprocessor is an `INVALID_KNOB` on `preprocessor`.
 */
export function preprocessSketch(img: Planar, preprocessor: SketchPreprocessor): Planar {
  const out = planar(img.channels, img.height, img.width);
  if (preprocessor === 'invert') {
    for (let i = 0; i < img.data.length; i++) out.data[i] = -img.data[i];
  } else if (preprocessor === 'none') {
    out.data.set(img.data);
  } else {
    throw new PipelineError('INVALID_KNOB', `unknown sketch preprocessor ${JSON.stringify(preprocessor)}`, 'preprocessor');
  }
  return out;
}

/** The blank / unconditional sketch (contract §2.1, §6): all −1, 3 channels, H×W. */
export const blankSketch = (H: number, W: number): Planar => planar(3, H, W, -1);
