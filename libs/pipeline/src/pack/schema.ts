/**
 * `pack.json`: the manifest of a model pack (a folder of ONNX graphs following
 * shared/model-contract.md). Parsed once by this schema; every problem is listed in one error.
 */
import { z } from 'zod';
import { CONTRACT_VERSION, GRAPH_NAMES, type GraphName } from './contract.ts';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');

export const graphEntrySchema = z.strictObject({
  /** File name inside the pack folder. */
  file: z.string().min(1).regex(/^[^/\\]+$/, 'must be a file name inside the pack, without folders'),
  /** sha256 of the file; verified before the session opens. */
  sha256,
  /** A required graph must be present for the pack to load; optional ones enable modes. */
  required: z.boolean().default(false),
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
    })
    .default({ clip: 224, sketchMask: 1024, refMask: 1024, lineExtractor: 512 }),
  graphs: z
    .record(z.string(), graphEntrySchema)
    .superRefine((graphs, ctx) => {
      for (const name of Object.keys(graphs)) {
        if (!(GRAPH_NAMES as string[]).includes(name)) {
          ctx.addIssue({ code: 'custom', path: [name], message: `unknown graph; the contract has ${GRAPH_NAMES.join(', ')}` });
        }
      }
    }),
  /** Knob defaults this pack recommends (override the contract's UI defaults). */
  defaults: z.record(z.string(), z.union([z.number(), z.boolean(), z.string()])).default({}),
});

export type PackManifest = z.infer<typeof packSchema>;
export type GraphEntry = z.infer<typeof graphEntrySchema>;
export const hasGraph = (m: PackManifest, g: GraphName): boolean => g in m.graphs;
