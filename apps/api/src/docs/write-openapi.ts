/**
 * Writes the OpenAPI document without a running farm (no Redis, no S3):
 *
 *   node --import tsx apps/api/src/docs/write-openapi.ts [openapi.json]
 *
 * to the file, or to stdout. The config is the API's (PUBLIC_URL, when set, is the document's server).
 */
import { writeFile } from 'node:fs/promises';
import { ConfigError, loadConfig } from '@celfarm/config';
import { openApiDocument } from './openapi.ts';

async function main(out: string | undefined): Promise<void> {
  const json = `${JSON.stringify(await openApiDocument(loadConfig()), null, 2)}\n`;
  if (out) await writeFile(out, json);
  else process.stdout.write(json);
}

main(process.argv[2]).catch((e: unknown) => {
  console.error(e instanceof ConfigError ? e.message : e);
  process.exit(1);
});
