/**
 * The inference thread. onnxruntime-node's `run()` blocks the event loop of the thread it runs
 * on, so all pipeline work happens here and the caller's thread (BullMQ locks, timers, HTTP)
 * keeps running. Cancellation is read from shared memory at step boundaries, because this
 * thread's own event loop may not turn between steps.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { colorize, colorizeFrame, type Progress } from '../colorize.ts';
import { isPipelineError } from '../errors.ts';
import { OrtRuntime } from '../ort/runtime.ts';
import { ModelPack } from '../pack/loader.ts';
import { deserializeReferenceContext, prepareReference, serializeReferenceContext } from '../reference.ts';
import type { FrameOutput, HostEvent, HostInit, HostRequest, SerializedError } from './protocol.ts';

const init = workerData as HostInit;
const port = parentPort!;
const cancelFlag = new Int32Array(init.cancel);

const post = (e: HostEvent, transfer: ArrayBuffer[] = []) => port.postMessage(e, transfer);

function serialize(e: unknown): SerializedError {
  if (isPipelineError(e)) return { name: e.name, code: e.code, field: e.field, message: e.message };
  const err = e instanceof Error ? e : new Error(String(e));
  return { name: err.name, message: err.message };
}

/** An AbortSignal-shaped view of the shared cancel slot for job `id`. */
function signalFor(id: number): AbortSignal {
  // Only `aborted` is read by the pipeline; the rest of AbortSignal is not needed here.
  return {
    get aborted() {
      return Atomics.load(cancelFlag, 0) === id;
    },
  } as unknown as AbortSignal;
}

async function main() {
  let pack: ModelPack;
  try {
    const runtime = new OrtRuntime({
      providers: init.providers,
      intraOpThreads: init.intraOpThreads,
      interOpThreads: init.interOpThreads,
    });
    pack = await ModelPack.load(init.packDir, runtime, { verifyHashes: init.verifyHashes });
    if (init.warmup) await pack.openAll();
    else await pack.session('unet');
    post({
      type: 'ready',
      provider: runtime.provider ?? 'cpu',
      pack: pack.ref,
      licence: { name: pack.manifest.licence.name, commercialUse: pack.manifest.licence.commercialUse },
    });
  } catch (e) {
    post({ type: 'init-error', error: serialize(e) });
    return;
  }

  const frameOut = (r: Awaited<ReturnType<typeof colorizeFrame>>): [FrameOutput, ArrayBuffer[]] => {
    const transfer = r.images.map((i) => i.data.buffer as ArrayBuffer);
    if (r.sketchMask) transfer.push(r.sketchMask.data.buffer as ArrayBuffer);
    return [{ images: r.images, box: r.box, sketchMask: r.sketchMask, seed: r.seed, timings: r.timings }, transfer];
  };

  let queue = Promise.resolve();
  port.on('message', (req: HostRequest) => {
    if (req.type === 'close') {
      queue = queue.then(() => pack.dispose()).then(() => port.close());
      return;
    }
    // One job at a time: this thread owns one set of sessions (one GPU).
    queue = queue.then(async () => {
      const signal = signalFor(req.id);
      const onProgress = (progress: Progress) =>
        post({ type: 'progress', id: req.id, progress });
      try {
        // Resolved once, before the job was sent: taken as given here.
        const { settings } = req;
        if (req.type === 'colorize') {
          const r = await colorize(pack, settings, req, { signal, onProgress });
          const [frame, transfer] = frameOut(r);
          post({ type: 'result', id: req.id, frame }, transfer);
        } else if (req.type === 'prepare') {
          const t0 = performance.now();
          const ctx = await prepareReference(pack, settings, req, { signal });
          const bytes = serializeReferenceContext(ctx);
          const m = ctx.referenceMask;
          const referenceMask = m ? { data: m.data, channels: 1, height: m.dims[2]!, width: m.dims[3]! } : null;
          post(
            { type: 'result', id: req.id, prepare: { key: ctx.key, context: bytes, referenceMask, seconds: (performance.now() - t0) / 1000 } },
            [bytes.buffer as ArrayBuffer],
          );
        } else {
          const ctx = deserializeReferenceContext(req.context, pack.ref);
          const r = await colorizeFrame(pack, settings, ctx, req.sketch, { signal, onProgress });
          const [frame, transfer] = frameOut(r);
          post({ type: 'result', id: req.id, frame }, transfer);
        }
      } catch (e) {
        post({ type: 'error', id: req.id, error: serialize(e) });
      }
    });
  });
}

void main();
