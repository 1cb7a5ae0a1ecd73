/**
 * The API process: parse the config once, boot, listen on API_HOST:API_PORT; on SIGTERM/SIGINT
 * stop accepting, finish in-flight requests, close connections and exit.
 */
import type { AddressInfo } from 'node:net';
import { ConfigError, loadConfig } from '@celfarm/config';
import { createApp } from './app.ts';

async function main(): Promise<void> {
  const config = loadConfig();
  const app = await createApp(config);
  await app.listen({ host: config.API_HOST, port: config.API_PORT });
  const address = app.getHttpServer().address() as AddressInfo | null;
  const port = address?.port ?? config.API_PORT;
  console.log(`api listening on http://${config.API_HOST}:${port} (docs at /docs)`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.log(`api: ${signal}, shutting down`);
    app.close().then(
      () => process.exit(0),
      (e: unknown) => {
        console.error('api: shutdown failed', e);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((e: unknown) => {
  console.error(e instanceof ConfigError ? e.message : e);
  process.exit(1);
});
