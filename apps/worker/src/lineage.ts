/**
 * shot.json: the shot's lineage in the object store — settings, seeds, pack, input hashes and
 * per-frame outputs. Deterministic (sorted keys, no timestamps), so a rerun of finalize rewrites
 * identical bytes.
 */
import type { FrameRecord, ShotRecord } from '@celfarm/jobs';

export interface ShotManifest {
  id: string;
  project: string;
  state: ShotRecord['state'];
  settings: Record<string, unknown>;
  seed: number;
  pack: { id: string; version: string };
  contextKey?: string;
  reference: { key: string; sha256?: string };
  background?: { key: string; sha256?: string };
  error?: ShotRecord['error'];
  frames: { frame: number; seed: number; sketch: string; sketchSha256?: string; output?: string; state: FrameRecord['state'] }[];
}

export function shotManifest(shot: ShotRecord, frames: FrameRecord[]): ShotManifest {
  return {
    id: shot.id,
    project: shot.project,
    state: shot.state,
    settings: shot.settings,
    seed: shot.seed,
    pack: { id: shot.pack.id, version: shot.pack.version },
    contextKey: shot.contextKey,
    reference: { key: shot.inputs.reference, sha256: shot.referenceSha256 },
    background: shot.inputs.background ? { key: shot.inputs.background, sha256: shot.backgroundSha256 } : undefined,
    error: shot.error,
    frames: [...frames]
      .sort((a, b) => a.frame - b.frame)
      .map((f) => ({
        frame: f.frame,
        seed: f.seed,
        sketch: shot.inputs.frames[f.frame - 1] ?? '',
        sketchSha256: f.sketchSha256,
        output: f.state === 'completed' ? f.output : undefined,
        state: f.state,
      })),
  };
}

/** JSON with object keys sorted at every level and `undefined` members dropped; ends with a newline. */
export function canonicalJson(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
          .map((k) => [k, sort((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return `${JSON.stringify(sort(value), null, 2)}\n`;
}
