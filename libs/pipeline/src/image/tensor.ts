/**
 * A planar (CHW) float32 image or mask, batch 1. Values are in the range the stage expects:
 * [-1, 1] for images entering the model, [0, 1] for masks.
 */
export interface Planar {
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

export function planar(channels: number, height: number, width: number, fill = 0): Planar {
  const data = new Float32Array(channels * height * width);
  if (fill !== 0) data.fill(fill);
  return { data, channels, height, width };
}

/** Index of (c, y, x) in a Planar's data. */
export const at = (p: Planar, c: number, y: number, x: number): number => (c * p.height + y) * p.width + x;
