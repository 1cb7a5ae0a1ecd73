/**
 * The API's own error: an HTTP status plus the `{error: {code, field?, message}}` body every
 * failure answers with. Services throw it for conditions that are not pipeline or store errors.
 */
export interface ErrorBody {
  error: { code: string; field?: string; message: string };
}

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The request field the error is about, e.g. `frames[2]`, `frames.keys[0]`, `reference`. */
    readonly field?: string,
  ) {
    super(message);
  }

  body(): ErrorBody {
    return { error: { code: this.code, ...(this.field !== undefined ? { field: this.field } : {}), message: this.message } };
  }
}

export const notFound = (what: string, id: string): ApiError => new ApiError(404, 'NOT_FOUND', `${what} ${id} not found`);

/** 400 naming `field`; `code` defaults to INVALID_REQUEST. */
export const badRequest = (field: string, message: string, code = 'INVALID_REQUEST'): ApiError => new ApiError(400, code, message, field);

export const missingInput = (field: string, message = 'required'): ApiError => new ApiError(400, 'MISSING_INPUT', message, field);

export const tooLarge = (field: string, message: string): ApiError => new ApiError(413, 'PAYLOAD_TOO_LARGE', message, field);

/** A zod issue path as a field name: `frames.keys[0]`, `settings.steps`. */
export function fieldPath(path: readonly PropertyKey[], prefix = ''): string {
  let out = prefix;
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}
