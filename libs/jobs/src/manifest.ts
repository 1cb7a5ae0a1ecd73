/**
 * shot.json: the shot's lineage in the object store — name and studio ids, settings, seeds, pack,
 * input hashes and per-frame file names and outputs (the mapping from each input file to its
 * output) with their QA scores. Deterministic (sorted keys, no timestamps), so a rerun of finalize rewrites identical
 * bytes.
 */
import type { FrameRecord, ShotRecord } from './records.ts';

export interface ShotManifest {
  id: string;
  project: string;
  name: string;
  externalIds?: ShotRecord['externalIds'];
  state: ShotRecord['state'];
  /** What was rendered: the settings as resolved at submit (sizes fitted, defaults filled), not the request. */
  settings: ShotRecord['settings'];
  /** Consistency options (absent: all off). */
  consistency?: ShotRecord['consistency'];
  /** What resolving the settings adjusted or found unused, as the submit answered. */
  warnings: ShotRecord['warnings'];
  seed: number;
  pack: { id: string; version: string };
  contextKey?: string;
  reference: { key: string; sha256?: string };
  background?: { key: string; sha256?: string };
  error?: ShotRecord['error'];
  /**
   * `fileName` is the frame's original file name; `output`, once completed, is named after it;
   * `qa`: its shot QA scores, thresholds and the reasons it is flagged for review (README, "Shot QA").
   */
  frames: {
    frame: number;
    fileName?: string;
    seed: number;
    sketch: string;
    sketchSha256?: string;
    output?: string;
    state: FrameRecord['state'];
    qa?: FrameRecord['qa'];
    /** The user's approval of this take, if any. */
    review?: FrameRecord['review'];
    /** Reference chaining: the frame and take whose output this take rendered from. */
    referenceFrom?: FrameRecord['referenceFrom'];
    /** Earlier takes the frame had before it was rendered again with another seed (their seeds, outputs, scores). */
    takes?: FrameRecord['takes'];
  }[];
}

export function shotManifest(shot: ShotRecord, frames: FrameRecord[]): ShotManifest {
  return {
    id: shot.id,
    project: shot.project,
    name: shot.name ?? shot.id,
    externalIds: shot.externalIds,
    state: shot.state,
    settings: shot.settings,
    consistency: shot.consistency,
    warnings: shot.warnings,
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
        fileName: f.fileName,
        seed: f.seed,
        sketch: shot.inputs.frames[f.frame - 1] ?? '',
        sketchSha256: f.sketchSha256,
        output: f.state === 'completed' ? f.output : undefined,
        state: f.state,
        qa: f.state === 'completed' ? f.qa : undefined,
        review: f.state === 'completed' ? f.review : undefined,
        referenceFrom: f.state === 'completed' ? f.referenceFrom : undefined,
        takes: f.takes,
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
