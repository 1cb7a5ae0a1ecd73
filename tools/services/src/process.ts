import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export interface NodeProcess {
  name: string;
  /** The worker's /metrics URL (workers only). */
  metricsUrl?: string;
  child: ChildProcess;
  output: string[];
  /** Where every output line is also written, when `logFile` was given. */
  logFile?: string;
  /** Resolves when a line matching `re` has been printed. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface NodeProcessOptions {
  /** A file that receives every output line (created with its folder, truncated). Default: none. */
  logFile?: string;
}

/**
 * Runs a TypeScript entry point (`node --import tsx script`) with `env`, collecting its output
 * lines; `waitFor` resolves on a matching line. Used for the API and workers in the demo, the
 * end-to-end tests and the benches. Set FARM_LOG=1 to echo every line to stderr as `[name] line`.
 */
export function startNodeProcess(name: string, script: string, env: Record<string, string>, cwd = process.cwd(), options: NodeProcessOptions = {}): NodeProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log: ReturnType<typeof createWriteStream> | undefined;
  if (options.logFile) {
    mkdirSync(dirname(options.logFile), { recursive: true });
    log = createWriteStream(options.logFile);
    child.once('close', () => log!.end());
  }
  const output: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  const onData = (buf: Buffer) => {
    for (const line of buf.toString('utf8').split('\n')) {
      if (!line) continue;
      output.push(line);
      log?.write(`${line}\n`);
      if (process.env.FARM_LOG) process.stderr.write(`[${name}] ${line}\n`);
      for (const w of [...waiters]) {
        if (w.re.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  return {
    name,
    child,
    output,
    logFile: options.logFile,
    waitFor(re, timeoutMs = 30_000) {
      const seen = output.find((l) => re.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolvePromise, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`${name}: no line matching ${re} within ${timeoutMs} ms; last output:\n${output.slice(-20).join('\n')}`));
        }, timeoutMs);
        const onExit = () => {
          clearTimeout(timer);
          reject(new Error(`${name} exited (${child.exitCode}) before printing ${re}; output:\n${output.slice(-30).join('\n')}`));
        };
        child.once('exit', onExit);
        waiters.push({
          re,
          resolve: (l) => {
            clearTimeout(timer);
            child.off('exit', onExit);
            resolvePromise(l);
          },
        });
      });
    },
    kill(signal = 'SIGTERM') {
      return new Promise((resolvePromise) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolvePromise(child.exitCode);
        child.once('exit', (code) => resolvePromise(code));
        child.kill(signal);
      });
    },
  };
}

