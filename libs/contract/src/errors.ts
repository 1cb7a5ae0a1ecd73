/**
 * The one error of the API: every failure answers `{error: {code, field?, message}}` with a 4xx or
 * 5xx status, and {@link ApiError} is that answer as a value — thrown by the API's services, and
 * by the CLI and the dashboard when they read one.
 */
import { z } from 'zod';
import { errorInfoSchema } from '@celfarm/jobs/records';

/**
 * `{code, field?, message, permanent?}`: `code` is stable and machine-readable (`INVALID_REQUEST`,
 * `MISSING_INPUT`, `NOT_FOUND`, `STATE_CONFLICT`, …); `field` names the request field the error is
 * about (`frames.keys[0]`, `settings.steps`, `frames[2]`, `body`); `permanent` marks a frame's
 * failure that no retry can fix. The same object as a shot's or frame's `error`.
 */
export { errorInfoSchema, type ErrorInfo } from '@celfarm/jobs/records';

export const apiErrorBodySchema = z.object({ error: errorInfoSchema });
export type ApiErrorBody = z.output<typeof apiErrorBodySchema>;

/** An error answer of the API; status 0 is a client's own transport failure (nothing answered). */
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

  /** The body the API answers with. */
  body(): ApiErrorBody {
    return { error: { code: this.code, ...(this.field !== undefined ? { field: this.field } : {}), message: this.message } };
  }

  /**
   * A client's reading of a non-2xx answer: the body's error when it is one, else `HTTP_<status>`
   * with the start of the text (a proxy's error page, say).
   */
  static fromAnswer(status: number, text: string, statusText = ''): ApiError {
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    const parsed = apiErrorBodySchema.safeParse(json);
    if (parsed.success) return new ApiError(status, parsed.data.error.code, parsed.data.error.message, parsed.data.error.field);
    return new ApiError(status, `HTTP_${status}`, text.slice(0, 200).trim() || statusText || `status ${status}`);
  }
}
