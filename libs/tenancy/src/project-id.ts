/**
 * The project id rule, in one place: the API's request schemas, the CLI, tenancy's records and
 * the job payloads all take it from here. Imports only zod, so a client takes it as
 * `@celfarm/tenancy/project-id` without Redis.
 */
import { z } from 'zod';

/** A project id: a lowercase slug of at most 64 characters. */
export const PROJECT_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** What {@link PROJECT_ID_PATTERN} asks for, in the words an error shows. */
export const PROJECT_ID_RULE = 'a lowercase slug: letters, digits, _ and -, starting with a letter or digit, at most 64';

export const projectIdSchema = z.string().regex(PROJECT_ID_PATTERN, PROJECT_ID_RULE);
