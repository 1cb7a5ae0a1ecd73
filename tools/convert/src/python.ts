/**
 * Runs the Python converter (`celfarm_convert`) with Debian's interpreter, which is the one that
 * sees Debian's python3-torch and python3-onnx (the `python3` first on PATH may be another).
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

/** The folder that holds the `celfarm_convert` package. */
export const CONVERT_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');

/** `CELFARM_PYTHON` if set, else Debian's /usr/bin/python3. */
export const python = (): string => process.env.CELFARM_PYTHON ?? '/usr/bin/python3';

const INSTALL_HINT = 'apt-get install python3-torch python3-onnx python3-yaml python3-numpy';

/** A one-line reason when the interpreter cannot run the converter, else null. */
export function pythonProblem(): string | null {
  const r = spawnSync(python(), ['-c', 'import torch, onnx, yaml, numpy'], { encoding: 'utf8' });
  if (r.error) return `cannot run ${python()} (${r.error.message}); set CELFARM_PYTHON or ${INSTALL_HINT}`;
  if (r.status !== 0) {
    const last = r.stderr.trim().split('\n').pop() ?? '';
    return `${python()} lacks the converter's packages (${last}); ${INSTALL_HINT}`;
  }
  return null;
}

export interface PythonRun {
  status: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `python -m celfarm_convert <args>`. stderr (progress, errors) is streamed to ours when
 * `echo` is set, and always collected; stdout (a JSON summary) is collected.
 */
export function runConverter(args: string[], options: { echo?: boolean } = {}): Promise<PythonRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(python(), ['-m', 'celfarm_convert', ...args], {
      cwd: CONVERT_DIR,
      env: { ...process.env, PYTHONPATH: CONVERT_DIR, PYTHONDONTWRITEBYTECODE: '1', PYTHONWARNINGS: 'ignore' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (options.echo) process.stderr.write(d);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ status: code ?? (signal ? 128 : 1), stdout, stderr }));
  });
}
