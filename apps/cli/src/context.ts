/**
 * What every command module shares: where output goes, the API client for the global flags, the
 * exit status, and the parsers of numeric and list flags.
 */
import { Command, InvalidArgumentError } from 'commander';
import { CelfarmApi, InputError } from './api.ts';
import type { CliConfig } from './config.ts';

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

export const defaultIo: CliIo = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
};

/**
 * The exit statuses of `celfarm`: 0 success; 1 a failure that is not bad input (a shot that failed
 * or was cancelled, a 5xx, an unreachable API, a wait timeout); 2 bad input (a 4xx answer, a bad
 * flag, knob or file; nothing was created); 3 `submit --strict` created a shot whose settings the
 * farm adjusted or found unused (its warnings are printed; the shot renders unless cancelled).
 */
export const EXIT = { OK: 0, FAILED: 1, BAD_INPUT: 2, WARNINGS: 3 } as const;
export type ExitStatus = (typeof EXIT)[keyof typeof EXIT];

/** Handed to each command module by `buildProgram`. */
export interface CliContext {
  readonly io: CliIo;
  readonly cfg: CliConfig;
  /** The client for this command's `--api` and `--key` (or the environment's). */
  api(cmd: Command): CelfarmApi;
  /**
   * The command ran, but what it reports is a failure (a shot failed, a ping not delivered): exit 1,
   * or the status given (the highest one given wins).
   */
  fail(status?: ExitStatus): void;
}

export function createContext(cfg: CliConfig, io: CliIo): CliContext & { exitCode(): number } {
  let exitCode = 0;
  return {
    io,
    cfg,
    api(cmd) {
      const g = cmd.optsWithGlobals<{ api?: string; key?: string }>();
      const api = g.api ?? cfg.api;
      if (!URL.canParse(api) || !/^https?:$/.test(new URL(api).protocol)) {
        throw new InputError('INVALID_REQUEST', `${api} is not an http(s) URL`, g.api !== undefined ? '--api' : 'CELFARM_API');
      }
      return new CelfarmApi({
        api,
        key: g.key ?? cfg.key,
        onRetry: ({ status, waitMs }) =>
          io.err(`${status === 429 ? 'rate limited' : 'API unavailable'} (${status}); retrying in ${(waitMs / 1000).toFixed(1)} s\n`),
      });
    },
    fail(status = EXIT.FAILED) {
      exitCode = Math.max(exitCode, status);
    },
    exitCode: () => exitCode,
  };
}

/** A flag's value as a number (`integer`: whole); a bad one is a usage error naming the flag. */
export function numberArg(flag: string, integer = false) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
      throw new InvalidArgumentError(`${flag} must be ${integer ? 'an integer' : 'a number'}`);
    }
    return n;
  };
}

/** `a, b,c` → `['a', 'b', 'c']`. */
export const listArg = (v: string): string[] =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
