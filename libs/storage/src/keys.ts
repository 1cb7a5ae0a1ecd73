/**
 * The object key layout (ARCHITECTURE.md "Storage layout"). Deterministic: the same shot, frame
 * and inputs always map to the same keys, so a rerun rewrites the same objects.
 */
const pad = (frame: number) => String(frame).padStart(5, '0');
const join = (...parts: string[]) => parts.filter((p) => p !== '').join('/');

export interface ShotKeys {
  root: string;
  inputsPrefix: string;
  frameInput(frame: number): string;
  reference: string;
  background: string;
  sketchMask(frame: number): string;
  referenceMask: string;
  output(frame: number): string;
  preview(frame: number): string;
  outputsPrefix: string;
  manifest: string;
}

/** Keys of one shot; frames are 1-based in keys (00001.png is the first frame). */
export function shotKeys(prefix: string, project: string, shot: string): ShotKeys {
  const root = join(prefix, 'projects', project, 'shots', shot);
  return {
    root,
    inputsPrefix: `${root}/inputs/`,
    frameInput: (f) => `${root}/inputs/frames/${pad(f)}.png`,
    reference: `${root}/inputs/reference.png`,
    background: `${root}/inputs/background.png`,
    sketchMask: (f) => `${root}/masks/sketch/${pad(f)}.png`,
    referenceMask: `${root}/masks/reference.png`,
    output: (f) => `${root}/outputs/${pad(f)}.png`,
    preview: (f) => `${root}/outputs/previews/${pad(f)}.webp`,
    outputsPrefix: `${root}/outputs/`,
    manifest: `${root}/shot.json`,
  };
}

export const projectPrefix = (prefix: string, project: string): string => `${join(prefix, 'projects', project)}/`;
export const referenceContextKey = (prefix: string, sha256: string): string => join(prefix, 'cache', 'reference-contexts', `${sha256}.safetensors`);
export const packPrefix = (prefix: string, packId: string): string => `${join(prefix, 'packs', packId)}/`;
