/**
 * `pack.json`: the manifest of a model pack (a folder of ONNX graphs following
 * shared/model-contract.md). Parsed once by this schema; every problem is listed in one error.
 */
import { z } from 'zod';
import { CONTRACT_VERSION, GRAPH_NAMES, REF_MASK_NETWORKS, type GraphName } from './contract.ts';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');

const fileName = z
  .string()
  .min(1)
  .regex(/^[^/\\]+$/, 'must be a file name inside the pack, without folders')
  .refine((f) => f !== '.' && f !== '..' && f !== 'pack.json', 'must name a file of its own inside the pack');

/** An ONNX external-data file: the weights of a graph over 2 GB, written next to its .onnx. */
export const dataFileSchema = z.strictObject({
  /** File name inside the pack folder, as the graph's external-data `location` names it. */
  file: fileName,
  /** sha256 of the file; verified with the graph's. */
  sha256,
});

export const graphEntrySchema = z.strictObject({
  /** File name inside the pack folder. */
  file: fileName,
  /** sha256 of the file; verified before the session opens. */
  sha256,
  /** A required graph must be present for the pack to load; optional ones enable modes. */
  required: z.boolean().default(false),
  /**
   * External-data files of the graph (none when absent). ORT finds them next to the .onnx file
   * when the session is opened from its path, so they need only be present and verified.
   */
  data: z.array(dataFileSchema).optional(),
});

/** How a pack was made from upstream weights: written by the converter, shown, never interpreted. */
export const provenanceSchema = z.strictObject({
  /** Tool and version that wrote the pack, e.g. `celfarm-convert@1.0.0`. */
  converter: z.string().min(1),
  /** Precision the weights were exported in. */
  dtype: z.enum(['fp32', 'fp16']),
  /** The upstream files the graphs were converted from. */
  sources: z.array(
    z.strictObject({
      /** What the file is to the model, e.g. `unet`, `vae`, `clip`. */
      role: z.string().min(1),
      /** The upstream file's name (not a file of the pack). */
      file: z.string().min(1),
      sha256,
      bytes: z.number().int().min(0),
    }),
  ),
  /** The model configuration the converter used. */
  config: z.record(z.string(), z.unknown()),
});

export const packSchema = z.strictObject({
  /** Contract the graphs follow; the runtime refuses any other. */
  contract: z.literal(CONTRACT_VERSION),
  id: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'lowercase letters, digits, . _ -; at most 64'),
  version: z.string().min(1).max(64),
  description: z.string().default(''),
  licence: z.strictObject({
    /** SPDX id or name, e.g. `CC-BY-NC-SA-4.0`. */
    name: z.string().min(1),
    text: z.string().min(1),
    commercialUse: z.boolean(),
    /** Where the weights came from: a URL or a sentence. */
    source: z.string().min(1).optional(),
  }),
  /** What the UNet predicts (contract §4.1 model wrapper). */
  prediction: z.enum(['v', 'eps']),
  latent: z.strictObject({
    /** Pixels per latent cell along each axis (8 for the SD VAE). */
    factor: z.number().int().min(1).max(64),
    channels: z.number().int().min(1).max(64),
    /** z = scale · VAE mean (0.18215 for SD). */
    scale: z.number().positive(),
  }),
  size: z
    .strictObject({
      /** H and W must be multiples of this (64 for the v2 UNet). */
      multiple: z.number().int().min(1),
      min: z.number().int().min(1),
      max: z.number().int().min(1),
      default: z.number().int().min(1),
    })
    .refine((s) => s.min <= s.default && s.default <= s.max, 'need min ≤ default ≤ max')
    .refine((s) => s.min % s.multiple === 0 && s.max % s.multiple === 0 && s.default % s.multiple === 0, {
      message: 'min, default and max must be multiples of `multiple`',
    }),
  /** Fixed input sizes of the graphs that do not follow H×W (contract §7 "Fixed"). */
  inputs: z
    .strictObject({
      clip: z.number().int().min(1).default(224),
      sketchMask: z.number().int().min(1).default(1024),
      refMask: z.number().int().min(1).default(1024),
      lineExtractor: z.number().int().min(1).default(512),
      /**
       * Which network `ref_mask` holds, so its input is prepared as that network expects
       * (contract G9): `rmbg` (RMBG-2.0: stretched, ImageNet-normalised) or `isnet` (ISNet anime
       * segmentation: letterboxed, colour-inverted to [0, 1], padding white). The other network,
       * when the pack has it too, is the graph `ref_mask_<network>`, prepared the same way.
       */
      refMaskNetwork: z.enum(REF_MASK_NETWORKS).default('rmbg'),
    })
    .default({ clip: 224, sketchMask: 1024, refMask: 1024, lineExtractor: 512, refMaskNetwork: 'rmbg' }),
  graphs: z
    .record(z.string(), graphEntrySchema)
    .superRefine((graphs, ctx) => {
      for (const name of Object.keys(graphs)) {
        if (!(GRAPH_NAMES as string[]).includes(name)) {
          ctx.addIssue({ code: 'custom', path: [name], message: `unknown graph; the contract has ${GRAPH_NAMES.join(', ')}` });
        }
      }
      // A file is downloaded and verified once, so one name cannot stand for two contents.
      const seen = new Map<string, string>();
      for (const [name, entry] of Object.entries(graphs)) {
        const files: Array<[Array<string | number>, { file: string; sha256: string }]> = [
          [[name, 'file'], entry],
          ...(entry.data ?? []).map((d, i): [Array<string | number>, typeof d] => [[name, 'data', i, 'file'], d]),
        ];
        for (const [path, f] of files) {
          const other = seen.get(f.file);
          if (other !== undefined && other !== f.sha256) {
            ctx.addIssue({ code: 'custom', path, message: `${f.file} is listed twice with different sha256` });
          }
          seen.set(f.file, f.sha256);
        }
      }
    }),
  /** Knob defaults this pack recommends (override the contract's UI defaults). */
  defaults: z.record(z.string(), z.union([z.number(), z.boolean(), z.string()])).default({}),
  /** How the pack was converted (absent from packs not made by a converter). */
  provenance: provenanceSchema.optional(),
});

export type PackManifest = z.infer<typeof packSchema>;
export type GraphEntry = z.infer<typeof graphEntrySchema>;
export type DataFile = z.infer<typeof dataFileSchema>;
export type Provenance = z.infer<typeof provenanceSchema>;
export const hasGraph = (m: PackManifest, g: GraphName): boolean => g in m.graphs;
