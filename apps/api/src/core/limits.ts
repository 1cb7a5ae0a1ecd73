/** Request size limits. Images are big; JSON bodies are not. */
export const LIMITS = {
  /** One image file (multipart part, or an existing object named by key). */
  fileBytes: 64 * 1024 * 1024,
  /** Everything in one multipart submit. */
  multipartBytes: 512 * 1024 * 1024,
  /** A JSON body (keys of up to MAX_FRAMES frames fit easily). */
  jsonBytes: 8 * 1024 * 1024,
  /** The `request` field of a multipart submit. */
  requestFieldBytes: 1024 * 1024,
} as const;
