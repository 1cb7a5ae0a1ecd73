/**
 * One exception filter for the whole API: every failure answers `{error: {code, field?, message}}`.
 * Bad input is a 4xx naming the field; only faults of the farm itself are 500s (and logged).
 */
import { Catch, HttpException, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { ZodValidationException } from 'nestjs-zod';
import type { ApiErrorBody } from '@celfarm/contract';
import { StateConflictError } from '@celfarm/jobs';
import { PipelineError } from '@celfarm/pipeline/errors';
import { ApiError, fieldPath } from './api-error.ts';

interface ZodLikeIssue {
  path: PropertyKey[];
  message: string;
  code?: string;
  input?: unknown;
}

function isZodError(e: unknown): e is Error & { issues: ZodLikeIssue[] } {
  return e instanceof Error && e.name === 'ZodError' && Array.isArray((e as { issues?: unknown }).issues);
}

const STATUS_CODES: Record<number, string> = {
  400: 'BAD_REQUEST',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  406: 'NOT_ACCEPTABLE',
  409: 'STATE_CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  503: 'UNAVAILABLE',
};

/** Maps any thrown value to the status and body the client sees. */
export function toErrorResponse(e: unknown): { status: number; body: ApiErrorBody } {
  if (e instanceof ApiError) return { status: e.status, body: e.body() };
  if (e instanceof PipelineError) {
    const status = e.code === 'IMAGE_TOO_LARGE' ? 413 : e.permanent ? 400 : 500;
    // PipelineError prefixes its message with the field, and zod-derived messages carry it too.
    const twice = e.field ? `${e.field}: ${e.field}: ` : null;
    const message = twice && e.message.startsWith(twice) ? e.message.slice(e.field!.length + 2) : e.message;
    return { status, body: { error: { code: e.code, ...(e.field ? { field: e.field } : {}), message } } };
  }
  const zod = e instanceof ZodValidationException ? e.getZodError() : e;
  if (isZodError(zod)) {
    const first = zod.issues[0];
    // An unknown key is named itself (`colour`, `frames.key`), not its parent object.
    const unknown = first?.code === 'unrecognized_keys' ? (first as ZodLikeIssue & { keys?: string[] }).keys?.[0] : undefined;
    const field = first ? fieldPath(unknown !== undefined ? [...first.path, unknown] : first.path) : '';
    const missing = first?.code === 'invalid_type' && first.input === undefined;
    const message = zod.issues.map((i) => `${fieldPath(i.path) || '(body)'}: ${i.message}`).join('; ');
    return { status: 400, body: { error: { code: missing ? 'MISSING_INPUT' : 'INVALID_REQUEST', ...(field ? { field } : {}), message } } };
  }
  if (e instanceof StateConflictError) return { status: 409, body: { error: { code: 'STATE_CONFLICT', message: e.message } } };
  let status: number | undefined;
  let message = 'internal error';
  if (e instanceof HttpException) {
    status = e.getStatus();
    message = e.message;
  } else if (e instanceof Error && typeof (e as { statusCode?: unknown }).statusCode === 'number') {
    // Fastify and plugin errors (body too large, bad JSON, multipart limits) carry their status.
    status = (e as unknown as { statusCode: number }).statusCode;
    message = e.message;
  }
  if (status !== undefined && status >= 400 && status < 500) {
    // Errors raised before a handler ran concern the request body as a whole.
    const field = status === 413 || status === 415 || (status === 400 && /body|JSON/i.test(message)) ? 'body' : undefined;
    return { status, body: { error: { code: STATUS_CODES[status] ?? 'BAD_REQUEST', ...(field ? { field } : {}), message } } };
  }
  return { status: status ?? 500, body: { error: { code: STATUS_CODES[status ?? 500] ?? 'INTERNAL', message: status ? message : 'internal error' } } };
}

@Catch()
export class ApiExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('api');

  catch(exception: unknown, host: ArgumentsHost): void {
    const { status, body } = toErrorResponse(exception);
    if (status >= 500) this.logger.error(exception instanceof Error ? (exception.stack ?? exception.message) : String(exception));
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    void reply.status(status).send(body);
  }
}
