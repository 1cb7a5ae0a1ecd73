/**
 * The API's one error, {@link ApiError} of the wire contract: an HTTP status plus the
 * `{error: {code, field?, message}}` body every failure answers with. Services throw it for
 * conditions that are not pipeline or store errors; the helpers below name the usual ones.
 */
import { createZodDto } from 'nestjs-zod';
import { ApiError, apiErrorBodySchema } from '@celfarm/contract';

export { ApiError };
export type { ApiErrorBody as ErrorBody } from '@celfarm/contract';

/** The error body in the OpenAPI document. */
export class ErrorDto extends createZodDto(apiErrorBodySchema) {}

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
