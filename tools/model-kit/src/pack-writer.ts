/**
 * Writes a pack folder: one `<graph>.onnx` per graph, their sha256s, and `pack.json` last (so a
 * half-written pack never looks complete), validated by the pipeline's own schema. Shared by every
 * pack this kit builds.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CONTRACT_VERSION, CORE_GRAPHS, GRAPH_NAMES, type GraphName } from '@celfarm/pipeline/pack/contract';
import { packFileEntries } from '@celfarm/pipeline/pack/loader';
import { packSchema, type PackManifest } from '@celfarm/pipeline/pack/schema';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** Everything in pack.json but the contract and the graph table. */
export type PackFields = Omit<PackManifest, 'contract' | 'graphs'>;

export async function writePack(
  outDir: string,
  bytes: Partial<Record<GraphName, Uint8Array>>,
  fields: PackFields,
): Promise<PackManifest> {
  await mkdir(outDir, { recursive: true });
  await rm(join(outDir, 'pack.json'), { force: true });
  const graphs: PackManifest['graphs'] = {};
  for (const name of GRAPH_NAMES) {
    const file = `${name}.onnx`;
    const data = bytes[name];
    if (!data) {
      await rm(join(outDir, file), { force: true }); // stale file of an omitted graph
      continue;
    }
    await writeFile(join(outDir, file), data);
    graphs[name] = { file, sha256: sha256(data), required: CORE_GRAPHS.includes(name) };
  }
  const manifest = packSchema.parse({ contract: CONTRACT_VERSION, ...fields, graphs });
  await writeFile(join(outDir, 'pack.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** True when `dir/pack.json` parses, `accept(manifest)` holds, and every file of the pack matches its hash. */
export async function packIsCurrent(dir: string, accept: (m: PackManifest) => boolean): Promise<boolean> {
  try {
    const manifest = packSchema.parse(JSON.parse(await readFile(join(dir, 'pack.json'), 'utf8')));
    if (!accept(manifest)) return false;
    for (const f of packFileEntries(manifest)) {
      if (sha256(await readFile(join(dir, f.file))) !== f.sha256) return false;
    }
    return true;
  } catch {
    return false;
  }
}
