/**
 * @celfarm/pipeline — the ColorizeDiffusion v2 runtime: model packs, ORT sessions, image ops,
 * schedules and samplers, guidance, reference contexts, colorize(), and the off-thread host.
 */
export * from './errors.ts';
export * from './pack/contract.ts';
export * from './pack/schema.ts';
export * from './pack/manifest.ts';
export * from './hash.ts';
export { ModelPack, checkSessionAgainstContract, packFileEntries, packFiles, type LoadOptions, type PackFile } from './pack/loader.ts';
export { OrtRuntime, RunStats, type GraphSession, type RuntimeOptions, type Tensor, type TensorInfo } from './ort/runtime.ts';
export * from './image/index.ts';
export type { Planar } from './image/tensor.ts';
export * from './sampling/index.ts';
export * from './guidance.ts';
export * from './settings.ts';
export * from './size-embedding.ts';
export {
  prepareReference,
  referenceContextKey,
  serializeReferenceContext,
  deserializeReferenceContext,
  padReference,
  type ReferenceContext,
  type ReferenceInputs,
} from './reference.ts';
export {
  colorize,
  colorizeFrame,
  type ColorizeInputs,
  type FrameOptions,
  type FrameResult,
  type Progress,
  type Stage,
} from './colorize.ts';
export { PipelineHost, type HostOptions, type HostInfo, type JobOptions } from './host/host.ts';
export type { FrameOutput, PrepareOutput } from './host/protocol.ts';
export { checkPackServes, missingGraphs, type GraphNeed } from './requirements.ts';
