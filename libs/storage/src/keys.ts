/**
 * The object key layout (ARCHITECTURE.md "Storage layout"). Deterministic: the same shot, frame
 * and inputs always map to the same keys, so a rerun rewrites the same objects.
 */
const pad = (frame: number) => String(frame).padStart(5, '0');
const join = (...parts: string[]) => parts.filter((p) => p !== '').join('/');

/** The file name without its extension (`sh010_0001.png` → `sh010_0001`; `.png` stays `.png`). */
const stem = (fileName: string) => {
  const dot = fileName.lastIndexOf('.');
  return dot > 0 ? fileName.slice(0, dot) : fileName;
};

/**
 * The file name of a frame's output: its input's name as a PNG (`sh010_0001.jpg` →
 * `sh010_0001.png`), or its number (`00001.png`) for a frame without a name. Two frames of a
 * shot must not share one (case-insensitively: a studio's Mac or Windows disk would merge them);
 * the API refuses such a shot.
 */
export const outputFileName = (frame: number, fileName?: string): string => `${fileName ? stem(fileName) : pad(frame)}.png`;

export interface ShotKeys {
  root: string;
  inputsPrefix: string;
  frameInput(frame: number): string;
  reference: string;
  background: string;
  sketchMask(frame: number): string;
  referenceMask: string;
  /** `outputs/<name>.png` after the frame's file name (see {@link outputFileName}), else `outputs/00001.png`. */
  output(frame: number, fileName?: string): string;
  /** `outputs/previews/<name>.webp`, named as the output. */
  preview(frame: number, fileName?: string): string;
  /** An earlier take of a frame, copied aside by a re-render: `outputs/takes/<name>.r<round>.png`. */
  takeOutput(frame: number, fileName: string | undefined, round: number): string;
  /** Its preview: `outputs/takes/previews/<name>.r<round>.webp`. */
  takePreview(frame: number, fileName: string | undefined, round: number): string;
  outputsPrefix: string;
  manifest: string;
}

/**
 * Keys of one shot; frames are 1-based in keys (00001.png is the first frame). Inputs and masks
 * are numbered; outputs and previews carry the frame's file name when it has one.
 */
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
    output: (f, fileName) => `${root}/outputs/${outputFileName(f, fileName)}`,
    preview: (f, fileName) => `${root}/outputs/previews/${stem(outputFileName(f, fileName))}.webp`,
    takeOutput: (f, fileName, round) => `${root}/outputs/takes/${stem(outputFileName(f, fileName))}.r${round}.png`,
    takePreview: (f, fileName, round) => `${root}/outputs/takes/previews/${stem(outputFileName(f, fileName))}.r${round}.webp`,
    outputsPrefix: `${root}/outputs/`,
    manifest: `${root}/shot.json`,
  };
}

export const projectPrefix = (prefix: string, project: string): string => `${join(prefix, 'projects', project)}/`;
export const referenceContextKey = (prefix: string, sha256: string): string => join(prefix, 'cache', 'reference-contexts', `${sha256}.safetensors`);
export const packPrefix = (prefix: string, packId: string): string => `${join(prefix, 'packs', packId)}/`;
