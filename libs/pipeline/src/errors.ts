/**
 * Typed errors of the pipeline. Every error carries a stable `code` and, where it concerns a
 * request field or a pack part, the `field` it names, so the API can answer 4xx naming the field
 * and the queue can tell bad input (unrecoverable) from a transient failure.
 */
export type PipelineErrorCode =
  | 'INVALID_IMAGE' // corrupt, unsupported or empty image data
  | 'IMAGE_TOO_LARGE' // over the pixel limit
  | 'INVALID_KNOB' // a setting out of range, of the wrong type, or unknown
  | 'UNKNOWN_SAMPLER'
  | 'UNKNOWN_MODE'
  | 'MISSING_INPUT' // a required image (sketch, reference) is absent
  | 'PACK_INVALID' // pack.json fails its schema, or a graph does not match the contract
  | 'PACK_FILE_MISSING'
  | 'PACK_HASH_MISMATCH'
  | 'GRAPH_MISSING' // the request needs a graph the pack does not have
  | 'CONTEXT_INVALID' // a serialised ReferenceContext is corrupt or belongs to another pack
  | 'CANCELLED'
  | 'RUNTIME'; // an execution-provider or ONNX Runtime failure

export class PipelineError extends Error {
  override readonly name = 'PipelineError';
  constructor(
    readonly code: PipelineErrorCode,
    message: string,
    /** The request field or pack part the error is about, e.g. `settings.steps`, `graphs.unet`. */
    readonly field?: string,
  ) {
    super(field ? `${field}: ${message}` : message);
  }

  /** True for errors a retry cannot fix (bad input, bad pack); false for runtime failures. */
  get permanent(): boolean {
    return this.code !== 'RUNTIME';
  }

  toJSON(): { code: PipelineErrorCode; field?: string; message: string } {
    return { code: this.code, field: this.field, message: this.message };
  }
}

export const isPipelineError = (e: unknown): e is PipelineError => e instanceof PipelineError;
