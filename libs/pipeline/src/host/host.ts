/**
 * {@link PipelineHost}: runs the pipeline on an inference thread behind an async API, with
 * progress events and cancellation at step boundaries. The caller's event loop never blocks on
 * ORT, so queue locks are renewed and timers fire while a frame samples.
 */
import { Worker } from 'node:worker_threads';
import type { Progress } from '../colorize.ts';
import { PipelineError, type PipelineErrorCode } from '../errors.ts';
import type { Planar } from '../image/tensor.ts';
import type { ResolvedSettings } from '../settings-schema.ts';
import type { FrameOutput, HostEvent, HostInit, HostRequest, PrepareOutput, SerializedError } from './protocol.ts';

export type { FrameOutput, PrepareOutput } from './protocol.ts';

export type HostOptions = Omit<HostInit, 'cancel'>;

export interface JobOptions {
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

export interface HostInfo {
  provider: string;
  pack: string;
  licence: { name: string; commercialUse: boolean };
}

interface Pending {
  resolve: (v: { frame?: FrameOutput; prepare?: PrepareOutput }) => void;
  reject: (e: Error) => void;
  onProgress?: (p: Progress) => void;
}

function revive(e: SerializedError): Error {
  if (e.code) return new PipelineError(e.code as PipelineErrorCode, e.message.replace(`${e.field}: `, ''), e.field);
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

const transferOf = (...planars: (Planar | undefined)[]) =>
  planars.filter((p): p is Planar => !!p).map((p) => p.data.buffer as ArrayBuffer);

export class PipelineHost {
  private readonly worker: Worker;
  private readonly cancelSlot = new Int32Array(new SharedArrayBuffer(4));
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  private dead: Error | null = null;
  /** Resolves when the pack is loaded and the UNet session is open. */
  readonly ready: Promise<HostInfo>;
  /**
   * Resolves with the reason when the inference thread ends (crash, or close()). After that every
   * call rejects at once, so a caller (a queue worker) can exit and be restarted instead of hanging.
   */
  readonly exited: Promise<Error>;
  private markExited!: (e: Error) => void;

  constructor(options: HostOptions) {
    const init: HostInit = { ...options, cancel: this.cancelSlot.buffer as SharedArrayBuffer };
    this.exited = new Promise<Error>((resolve) => (this.markExited = resolve));
    this.worker = new Worker(new URL('./worker-entry.mjs', import.meta.url), { workerData: init, execArgv: [] });
    this.ready = new Promise<HostInfo>((resolve, reject) => {
      const onEvent = (e: HostEvent) => {
        if (e.type === 'ready') resolve({ provider: e.provider, pack: e.pack, licence: e.licence });
        else if (e.type === 'init-error') reject(revive(e.error));
        else this.dispatch(e);
      };
      this.worker.on('message', onEvent);
      this.worker.on('error', (err) => {
        this.dead ??= err;
        reject(err);
        this.failAll(err);
      });
      this.worker.on('exit', (code) => {
        const err = new PipelineError('RUNTIME', `inference thread exited (code ${code})`);
        this.dead ??= err;
        reject(err);
        this.failAll(err);
        this.markExited(this.dead);
      });
    });
    // Callers that never await `ready` still see failures through their jobs.
    this.ready.catch(() => undefined);
  }

  private dispatch(e: HostEvent) {
    if (e.type === 'progress') this.pending.get(e.id)?.onProgress?.(e.progress);
    else if (e.type === 'result' || e.type === 'error') {
      const p = this.pending.get(e.id);
      if (!p) return;
      this.pending.delete(e.id);
      if (e.type === 'result') p.resolve(e);
      else p.reject(revive(e.error));
    }
  }

  private failAll(err: Error) {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private submit(req: HostRequest & { id: number }, transfer: ArrayBuffer[], opts: JobOptions) {
    if (this.closed) return Promise.reject(new PipelineError('RUNTIME', 'pipeline host is closed'));
    if (this.dead) return Promise.reject(this.dead);
    return new Promise<{ frame?: FrameOutput; prepare?: PrepareOutput }>((resolve, reject) => {
      this.pending.set(req.id, { resolve, reject, onProgress: opts.onProgress });
      if (opts.signal) {
        const cancel = () => Atomics.store(this.cancelSlot, 0, req.id);
        if (opts.signal.aborted) cancel();
        else opts.signal.addEventListener('abort', cancel, { once: true });
      }
      this.worker.postMessage(req, transfer);
    });
  }

  /**
   * One request end to end (reference context + frame), with settings as resolved by settings.ts.
   * Input pixel buffers are transferred to the inference thread (they become unusable here).
   */
  async colorize(
    inputs: { sketch: Planar; reference?: Planar; background?: Planar },
    settings: ResolvedSettings,
    opts: JobOptions = {},
  ): Promise<FrameOutput> {
    const id = this.nextId++;
    const r = await this.submit(
      { type: 'colorize', id, settings, ...inputs },
      transferOf(inputs.sketch, inputs.reference, inputs.background),
      opts,
    );
    return r.frame!;
  }

  /** Builds and serialises a shot's ReferenceContext. */
  async prepare(
    inputs: { reference?: Planar; background?: Planar },
    settings: ResolvedSettings,
    opts: JobOptions = {},
  ): Promise<PrepareOutput> {
    const id = this.nextId++;
    const r = await this.submit({ type: 'prepare', id, settings, ...inputs }, transferOf(inputs.reference, inputs.background), opts);
    return r.prepare!;
  }

  /** Colorizes one frame with a serialised ReferenceContext. */
  async frame(context: Uint8Array, sketch: Planar, settings: ResolvedSettings, opts: JobOptions = {}): Promise<FrameOutput> {
    const id = this.nextId++;
    const r = await this.submit({ type: 'frame', id, settings, context, sketch }, transferOf(sketch), opts);
    return r.frame!;
  }

  /** Releases the sessions and ends the thread. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage({ type: 'close' } satisfies HostRequest);
    const timer = setTimeout(() => void this.worker.terminate(), 5000);
    await exited;
    clearTimeout(timer);
  }
}
