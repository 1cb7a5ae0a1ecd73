/**
 * How the worker tells bad input (fail now, a retry cannot fix it) from a transient failure (let
 * BullMQ retry with backoff), and how errors are recorded on shots and frames.
 */
import { JobPayloadError, type ErrorInfo, type ShotRecord, type ShotStore } from '@celfarm/jobs';
import { PipelineError } from '@celfarm/pipeline';
import { StoreUnavailableError } from '@celfarm/storage';

/** The job names a shot or frame record that does not exist (deleted, or never created). */
export class ShotNotFoundError extends Error {
  override readonly name = 'ShotNotFoundError';
}

/**
 * A frame of a shot chained to its previous outputs (`referenceChain: previous`) whose link's
 * reference frame has not finished: the job goes back to the queue, delayed, without spending an
 * attempt, and nothing of the frame was changed.
 */
export class ChainNotReadyError extends Error {
  override readonly name = 'ChainNotReadyError';
}

/** The shot a job names; ShotNotFoundError (bad input: not retried) when it does not exist. */
export async function existingShot(store: Pick<ShotStore, 'get'>, id: string): Promise<ShotRecord> {
  const shot = await store.get(id);
  if (!shot) throw new ShotNotFoundError(`shot ${id} does not exist`);
  return shot;
}

/**
 * True for errors no retry can fix: permanent pipeline errors (bad image, bad knob, missing
 * input, bad pack), a payload that fails the catalogue, a shot that does not exist. A CANCELLED
 * error is not bad input: when it is not the shot's own cancellation it is retried.
 */
export function isBadInput(e: unknown): boolean {
  if (e instanceof PipelineError) return e.permanent && e.code !== 'CANCELLED';
  return e instanceof JobPayloadError || e instanceof ShotNotFoundError;
}

/**
 * True when the object store could not be reached: not the frame's fault and not worth an
 * attempt — the job goes back to the queue to wait for the store.
 */
export const isStoreUnavailable = (e: unknown): e is StoreUnavailableError => e instanceof StoreUnavailableError;

/**
 * The error as stored on shot and frame records: pipeline errors keep their code and field; bad
 * input is marked `permanent`, so no one offers to retry what would fail the same way.
 */
export function errorInfo(e: unknown): ErrorInfo {
  const permanent = isBadInput(e) ? { permanent: true } : {};
  if (e instanceof PipelineError) return { code: e.code, field: e.field, message: e.message, ...permanent };
  const err = e instanceof Error ? e : new Error(String(e));
  if (err instanceof ShotNotFoundError || err instanceof JobPayloadError) return { code: 'BAD_JOB', message: err.message, ...permanent };
  if (err instanceof StoreUnavailableError) return { code: 'STORE_UNAVAILABLE', message: err.message };
  return { code: 'INTERNAL', message: `${err.name}: ${err.message}` };
}
