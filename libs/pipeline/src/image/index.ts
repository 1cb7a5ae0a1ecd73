/** Image operations of the pipeline: tensors, resampling, letterbox, masks, encoder inputs, codecs. */
export * from './tensor.ts';
export * from './resample.ts';
export * from './letterbox.ts';
export * from './mask.ts';
export * from './clip.ts';
export * from './codec.ts';
export * from './sketch.ts';
export * from './extract.ts';
