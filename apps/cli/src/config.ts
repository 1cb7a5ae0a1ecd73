/**
 * The CLI's configuration from the environment, read once: the API address, the API key and an
 * optional project. Flags (`--api`, `--key`, `--project`) override these values.
 */
export interface CliConfig {
  /** Base URL of the API, without a trailing slash. */
  api: string;
  /** API key token (`cf_…`), sent as `Authorization: Bearer <key>`. */
  key?: string;
  /** Project a submit names when `--project` is not given; unset, the API uses the key's project. */
  project?: string;
}

export const DEFAULT_API = 'http://127.0.0.1:8080';

/** CELFARM_API, CELFARM_KEY, CELFARM_PROJECT; empty values count as unset. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  const get = (name: string) => {
    const v = env[name]?.trim();
    return v ? v : undefined;
  };
  const key = get('CELFARM_KEY');
  const project = get('CELFARM_PROJECT');
  return {
    api: (get('CELFARM_API') ?? DEFAULT_API).replace(/\/+$/, ''),
    ...(key ? { key } : {}),
    ...(project ? { project } : {}),
  };
}
