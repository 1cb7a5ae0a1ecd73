export { GraphBuilder, f, type AttrValue, type ConstTensor, type Dim, type ElemType } from './onnx-builder.ts';
export {
  ANALYTIC_BUILDER,
  ANALYTIC_GRAPHS,
  ANALYTIC_INPUTS,
  CLIP_MEAN,
  CLIP_STD,
  FEATURE_WIDTH,
  IMAGENET_MEAN,
  IMAGENET_STD,
  KAPPA,
  LATENT_SCALE,
  SKETCH_MASK_ITERATIONS,
  analyticDescription,
  analyticGraphs,
  buildAnalyticPack,
  hsBgLevel,
  logSigmaTable,
  sigmaOfT,
  type AnalyticPackOptions,
  type Prediction,
} from './analytic.ts';
export { isPackCurrent, runCli } from './cli.ts';
