/**
 * celfarm worker: one process per GPU. Parses the configuration once, starts the worker (see
 * app.ts), and on SIGTERM/SIGINT stops taking jobs, lets the current ones finish, leaves the
 * registry and exits 0. A second signal exits at once (status 1).
 *
 *   PACK_DIR=packs/analytic REDIS_URL=redis://127.0.0.1:6379 S3_ENDPOINT=http://127.0.0.1:4568 \
 *     node --import tsx apps/worker/src/main.ts
 */
import { loadConfig } from '@celfarm/config';
import { startWorkerApp, type WorkerApp } from './app.ts';

const describeError = (e: unknown) => (e instanceof Error ? (e.stack ?? e.message) : String(e));

function fail(what: string, e: unknown): never {
  console.error(`worker ${what}: ${describeError(e)}`);
  process.exit(1);
}

// Signal handlers go in before boot, so a SIGTERM that arrives while the worker starts (or right
// after it printed "ready") still stops it cleanly instead of killing it mid-job.
let booting: Promise<WorkerApp>;
let stopping = false;
function shutdown(signal: NodeJS.Signals): void {
  if (stopping) {
    console.error(`worker: ${signal} again, exiting without waiting`);
    process.exit(1);
  }
  stopping = true;
  booting
    .then(async (app) => {
      console.log(`worker ${app.id}: ${signal}, finishing the jobs in progress`);
      await app.stop();
      console.log(`worker ${app.id} stopped`);
      process.exit(0);
    })
    .catch((e: unknown) => fail('stopped uncleanly', e));
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

try {
  booting = startWorkerApp(loadConfig());
} catch (e) {
  fail('failed to start', e);
}
booting.catch((e: unknown) => fail('failed to start', e));
