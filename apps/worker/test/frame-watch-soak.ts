/**
 * Child process of frame-watch.test.ts (run with --expose-gc): FrameWatch lifecycles against one
 * long-lived outside signal, each frame's signal given an `abort` listener that holds a 64 kB
 * buffer and is never removed — what PipelineHost does with the frame's request. Prints the
 * heap growth as JSON: `{ "frames": n, "bytesPerFrame": b }`.
 *
 *   node --expose-gc --import tsx apps/worker/test/frame-watch-soak.ts [frames]
 */
import { FrameWatch } from '../src/frame-watch.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const collect = gc;

const frames = Number(process.argv[2] ?? 2000);
const parent = new AbortController();

async function lifecycle(): Promise<void> {
  const watch = new FrameWatch({ clock: () => new Date(), isCancelled: async () => false, write: async () => undefined, signal: parent.signal, cancelCheckMs: 60_000 });
  const request = new Uint8Array(64 * 1024).fill(1);
  watch.signal.addEventListener('abort', () => void request[0], { once: true });
  watch.onProgress({ stage: 'sample', step: 1, steps: 1 });
  await watch.stop();
}

async function heapAfterGc(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    collect();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
}

for (let i = 0; i < 200; i++) await lifecycle();
const before = await heapAfterGc();
for (let i = 0; i < frames; i++) await lifecycle();
const after = await heapAfterGc();
process.stdout.write(`${JSON.stringify({ frames, bytesPerFrame: Math.round((after - before) / frames) })}\n`);
