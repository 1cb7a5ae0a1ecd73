// Types for system-tools.mjs (plain JavaScript: it runs before `npm ci`).

export interface SystemTool {
  /** The Debian packages that provide the tool. */
  packages: string[];
  present(env: NodeJS.ProcessEnv): boolean;
  /** Matches the source of a test file (or of a file it imports) that runs the tool. */
  neededBy: RegExp;
  /** Why a setting (CHROMIUM_PATH, CELFARM_PYTHON) that points elsewhere keeps it missing; no install is tried then. */
  override?(env: NodeJS.ProcessEnv): string | false;
}

export type ToolName = 'redis-server' | 'redis-cli' | 'promtool' | 'chromium' | 'python3' | 'python3-torch';

export const SYSTEM_TOOLS: Record<ToolName, SystemTool>;

export function toolsNeededBy(files: string[], read?: (file: string) => string): ToolName[];

/** `[]` as root, `['sudo', '-n']` with passwordless sudo, null when apt-get cannot be run. */
export function aptPrefix(): string[] | null;

export function runApt(prefix: string[], args: string[]): boolean;

export interface EnsureOptions {
  env?: NodeJS.ProcessEnv;
  present?: (name: ToolName) => boolean;
  /** How to run apt-get (see aptPrefix); null: never install. Default: aptPrefix(). */
  apt?: string[] | null;
  run?: (prefix: string[], args: string[]) => boolean;
  log?: (line: string) => void;
}

/** One line per tool still missing after trying to install it; empty when all are present. */
export function ensureSystemTools(names: ToolName[], options?: EnsureOptions): string[];

export function ensureSystemToolsOrExit(names: ToolName[], what: string): void;
