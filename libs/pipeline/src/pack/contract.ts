/**
 * The graph contract of shared/model-contract.md §1 in code: every graph a pack may carry, its
 * input and output tensor names with their ranks, and which graphs each request needs.
 * The loader checks sessions against this table before any compute; the orchestrator forwards
 * tensors by these names.
 */
export const CONTRACT_VERSION = 'colorize-diffusion-v2@1';

export const CONTROL_NAMES = ['control_0', 'control_1', 'control_2', 'control_3', 'control_4'] as const;
export const HS_BG_NAMES = Array.from({ length: 12 }, (_, i) => `hs_bg_${i}`);
export const STYLE_NAMES = Array.from({ length: 12 }, (_, i) => `style_${i}`);
/** Attention injection (docs/attention-injection.md): the 16 transformer blocks' banks, in and out. */
export const BANK_IN_NAMES = Array.from({ length: 16 }, (_, i) => `bank_in_${i}`);
export const BANK_NAMES = Array.from({ length: 16 }, (_, i) => `bank_${i}`);

/** Tensor name → rank. */
export type TensorRanks = Record<string, number>;

export interface GraphSpec {
  inputs: TensorRanks;
  outputs: TensorRanks;
  /** Inputs a pack may omit (e.g. an explicit `timestep` on the encoders). */
  optionalInputs?: TensorRanks;
  /** Outputs a pack may omit (e.g. CLIP's `pooled`). */
  optionalOutputs?: TensorRanks;
}

const ranks = (names: readonly string[], rank: number): TensorRanks =>
  Object.fromEntries(names.map((n) => [n, rank]));

/** The UNet's rank-0 inputs (scales, threshold and gates). */
export const UNET_SCALAR_INPUTS = [
  'mask_threshold',
  'fg_scale',
  'bg_scale',
  'merge_scale',
  'lora_fg_gate',
  'lora_bg_gate',
  'style_gate',
  'bg_inject_gate',
] as const;

/** Line extractors of contract §1 G10 (the "extract" sketch preprocessor). */
export const LINE_EXTRACTORS = ['lineart_keras', 'lineart', 'lineart_denoise', 'lineart_sk'] as const;
export type LineExtractor = (typeof LINE_EXTRACTORS)[number];

/** The 43 inputs of the UNet (contract §G7). */
const UNET_INPUTS = {
  x: 4,
  timestep: 1,
  context_fg: 3,
  context_bg: 3,
  ...ranks(CONTROL_NAMES, 4),
  ...ranks(HS_BG_NAMES, 3),
  ...ranks(STYLE_NAMES, 2),
  mask: 4,
  ref_scales: 1,
  ...ranks(UNET_SCALAR_INPUTS, 0),
};

/** Networks of the reference mask (contract G9): RMBG-2.0 (BiRefNet) and ISNet anime segmentation. */
export const REF_MASK_NETWORKS = ['rmbg', 'isnet'] as const;
export type RefMaskNetwork = (typeof REF_MASK_NETWORKS)[number];

const MASK_SPEC = { inputs: { image: 4 }, outputs: { mask: 4 } } as const;

export const GRAPH_SPECS = {
  clip_image: { inputs: { pixels: 4 }, outputs: { local_tokens: 3 }, optionalOutputs: { pooled: 2 } },
  vae_encoder: { inputs: { image: 4 }, outputs: { mean: 4, logvar: 4 } },
  vae_decoder: { inputs: { latent: 4 }, outputs: { image: 4 } },
  control_encoder: { inputs: { sketch: 4 }, outputs: ranks(CONTROL_NAMES, 4) },
  bg_encoder: {
    inputs: { latent: 4, y: 2, context: 3 },
    optionalInputs: { timestep: 1 },
    outputs: ranks(HS_BG_NAMES, 3),
  },
  style_encoder: {
    inputs: { latent: 4, y: 2, context: 3 },
    optionalInputs: { timestep: 1 },
    outputs: ranks(STYLE_NAMES, 2),
  },
  unet: { inputs: UNET_INPUTS, outputs: { model_output: 4 } },
  /** `unet` with attention injection (docs/attention-injection.md); optional. */
  unet_inject: {
    inputs: { ...UNET_INPUTS, ...ranks(BANK_IN_NAMES, 3), injection_blend: 1 },
    outputs: { model_output: 4, ...ranks(BANK_NAMES, 3) },
  },
  sketch_mask: { inputs: { image: 4 }, outputs: { mask: 4 } },
  ref_mask: MASK_SPEC,
  /** A pack may carry the other network as well: `ref_mask_<network>` (the app's "Reference mask extractor"). */
  ref_mask_rmbg: MASK_SPEC,
  ref_mask_isnet: MASK_SPEC,
  lineart_keras: { inputs: { image: 4 }, outputs: { lines: 4 } },
  lineart: { inputs: { image: 4 }, outputs: { lines: 4 } },
  lineart_denoise: { inputs: { image: 4 }, outputs: { lines: 4 } },
  lineart_sk: { inputs: { image: 4 }, outputs: { lines: 4 } },
} as const satisfies Record<string, GraphSpec>;

export type GraphName = keyof typeof GRAPH_SPECS;
export const GRAPH_NAMES = Object.keys(GRAPH_SPECS) as GraphName[];

/** Graphs every pack must have: without them no mode can run. */
export const CORE_GRAPHS: readonly GraphName[] = ['clip_image', 'vae_decoder', 'control_encoder', 'unet'];

/** The graph that runs the reference-mask `network` in a pack whose `ref_mask` holds `packNetwork`. */
export const refMaskGraph = (network: RefMaskNetwork, packNetwork: RefMaskNetwork): GraphName =>
  network === packNetwork ? 'ref_mask' : `ref_mask_${network}`;
