/**
 * What a studio calls its shots and frames: a shot's name and the ids its own tracking uses
 * (show, sequence, shot code), and each frame's original file name. Zod and pure functions only:
 * the wire contract (and so the dashboard bundle) uses them too.
 */
import { z } from 'zod';

/** Longest shot name, in characters. */
export const SHOT_NAME_MAX = 200;
/** Longest file name of a frame, in characters (file systems allow 255 bytes; the output adds `.png`). */
export const FILE_NAME_MAX = 200;
/** Longest search text of `GET /v1/shots?q=`, in characters. */
export const SEARCH_MAX = 100;
/**
 * Shots a search (`GET /v1/shots?q=`) looks at per call, newest first. Each costs a few dozen
 * bytes of search text, not its record, so a call stays cheap at any number of shots.
 */
export const SEARCH_SCAN = 5000;

const NO_CONTROL = /^[^\p{Cc}]*$/u;

/** A shot's display name: 1–200 characters, no control characters; surrounding spaces are trimmed. */
export const shotNameSchema = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(SHOT_NAME_MAX, `at most ${SHOT_NAME_MAX} characters`)
  .regex(NO_CONTROL, 'no control characters (tabs, newlines …)');

/**
 * A code of the studio's own tracking (ShotGrid, ftrack, a spreadsheet): 1–64 letters, digits,
 * `.`, `_` or `-`, starting with a letter or digit — safe in file paths and URLs as it is.
 */
const studioCode = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, '1–64 letters, digits, ".", "_" or "-", starting with a letter or digit');

/** The ids a studio tracks the shot by; each optional. Searchable like the name. */
export const externalIdsSchema = z.strictObject({
  show: studioCode.optional(),
  sequence: studioCode.optional(),
  shot: studioCode.optional(),
});
export type ExternalIds = z.output<typeof externalIdsSchema>;

/**
 * A frame's original file name: a name, not a path (no `/` or `\`), not `.` or `..`, no control
 * characters, at most 200 characters.
 */
export const fileNameSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(FILE_NAME_MAX, `at most ${FILE_NAME_MAX} characters`)
  .regex(/^[^/\\]*$/, 'a file name, without "/" or "\\"')
  .regex(NO_CONTROL, 'no control characters')
  .refine((s) => s !== '.' && s !== '..', 'not "." or ".."');

/** The text of `GET /v1/shots?q=`: 1–100 characters, no control characters; trimmed. */
export const searchTextSchema = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(SEARCH_MAX, `at most ${SEARCH_MAX} characters`)
  .regex(NO_CONTROL, 'no control characters');

/** The last segment of an object key (its file name): `a/b/sh010_0001.png` → `sh010_0001.png`. */
export const lastSegment = (key: string): string => key.slice(key.lastIndexOf('/') + 1);

/** The name a frame without one is given: its number, as outputs were always named (`00001.png`). */
export const numberedFileName = (frame: number): string => `${String(frame).padStart(5, '0')}.png`;

/** Where a submit's frames came from, for a shot's default name. */
export interface NameSources {
  id: string;
  externalIds?: ExternalIds;
  /** File names of the frames, in order. */
  fileNames: readonly string[];
  /** The folder the frames were listed from (`frames.prefix`), or the first frame key's folder. */
  folder?: string;
}

/**
 * The name of a shot submitted without one: its shot code; else the common part of its frames'
 * file names (the first one's stem without its frame number: `sh010_0001.png` → `sh010`); else
 * the folder they came from; else the shot id.
 */
export function defaultShotName(s: NameSources): string {
  const first = s.fileNames[0];
  const candidates = [
    s.externalIds?.shot,
    // Extension, then a frame number after a separator, then separators left at the end.
    first?.replace(/(?<=.)\.[^.]*$/, '').replace(/(^|[._ -])\d+$/, '').replace(/[._ -]+$/, ''),
    s.folder !== undefined ? lastSegment(s.folder.replace(/\/+$/, '')) : undefined,
  ];
  for (const c of candidates) {
    const parsed = c === undefined ? undefined : shotNameSchema.safeParse(c);
    if (parsed?.success) return parsed.data;
  }
  return s.id;
}

/** `frames[1] (sh010_0002.png)`: a frame's request field with its file name, for messages. */
export const frameLabel = (field: string, fileName?: string): string => (fileName ? `${field} (${fileName})` : field);

/**
 * A message about `field` (`frames[1]: not a PNG …`, as pipeline errors word them) that names the
 * file as well: `frames[1] (sh010_0002.png): not a PNG …`. Other messages are returned as they are.
 */
export function namingFile(message: string, field: string, fileName?: string): string {
  const prefix = `${field}: `;
  if (!fileName || !message.startsWith(prefix)) return message;
  return `${frameLabel(field, fileName)}: ${message.slice(prefix.length)}`;
}

/**
 * What `GET /v1/shots?q=` matches a shot against: id, name and studio ids, lower-cased, one per
 * line (the search text has no line breaks, so a match never spans two of them).
 */
export function searchText(shot: { id: string; name?: string; externalIds?: ExternalIds }): string {
  const ids = shot.externalIds ?? {};
  return [shot.id, shot.name, ids.show, ids.sequence, ids.shot]
    .filter((s): s is string => !!s)
    .join('\n')
    .toLowerCase();
}

/** The identity a studio wants in `shot.*` events: the name and, when given, the studio ids. */
export function shotIdentity(shot: { id: string; name?: string; externalIds?: ExternalIds }): { name: string; externalIds?: ExternalIds } {
  return { name: shot.name ?? shot.id, ...(shot.externalIds && Object.keys(shot.externalIds).length ? { externalIds: shot.externalIds } : {}) };
}
