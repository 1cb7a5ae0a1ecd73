/**
 * `npm run convert -- --checkpoint <v2 .safetensors|.ckpt> --clip <ViT-H-14 weights> --out <pack>
 *  [--sketch-mask <file>] [--reference-mask <file>] [--line-extractor NAME=<file> …]
 *  [--attention-injection] [--config <inference .yaml>] [--dtype fp32] [--verify] [...]`
 *
 * Runs the Python converter (progress per graph on stderr), then with `--verify` checks every graph
 * of the new pack against the PyTorch modules through onnxruntime-node (max abs difference per
 * output, at a 128-pixel test size; `unet_inject`, written with `--attention-injection`, against
 * the plain UNet and a reference of the official injection hook). `--help` lists every option.
 * Exit status: 0 done, 2 bad input, 1 parity failure or an unexpected error.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { checkParity, parityError, type ParityRow } from './parity.ts';
import { pythonProblem, runConverter } from './python.ts';

/** Largest absolute difference accepted between a graph and its PyTorch module (fp32). */
export const PARITY_TOLERANCE = 1e-4;

const valueOf = (args: string[], flag: string): string | undefined => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : args.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);
};

/** Every value of a repeatable flag (`--flag v` or `--flag=v`). */
const valuesOf = (args: string[], flag: string): string[] =>
  args.flatMap((a, i) => (a === flag && i + 1 < args.length ? [args[i + 1]!] : a.startsWith(`${flag}=`) ? [a.slice(flag.length + 1)] : []));

/** Paths in the arguments are the user's (relative to where npm was run), not the converter's folder. */
function absolutePaths(args: string[], cwd: string): string[] {
  const pathFlags = new Set(['--checkpoint', '--clip', '--out', '--config', '--aux-pack', '--sketch-mask', '--reference-mask']);
  const namedPath = (v: string) => {
    const eq = v.indexOf('=');
    return eq > 0 ? `${v.slice(0, eq)}=${resolve(cwd, v.slice(eq + 1))}` : v;
  };
  return args.map((a, i) => {
    if (i > 0 && pathFlags.has(args[i - 1]!)) return resolve(cwd, a);
    if (i > 0 && args[i - 1] === '--line-extractor') return namedPath(a);
    const flag = [...pathFlags].find((f) => a.startsWith(`${f}=`));
    if (flag) return `${flag}=${resolve(cwd, a.slice(flag.length + 1))}`;
    if (a.startsWith('--line-extractor=')) return `--line-extractor=${namedPath(a.slice('--line-extractor='.length))}`;
    return a;
  });
}

export function formatParity(rows: ParityRow[]): string {
  return rows
    .map((r) => {
      const unit = r.unit === 1 ? '' : `, ÷${r.unit} as the runtime reads it: ${parityError(r).toExponential(2)}`;
      return `  ${`${r.graph}/${r.case}`.padEnd(28)} ${r.output.padEnd(14)} max |Δ| ${r.maxAbs.toExponential(2)} (outputs up to ${r.scale.toPrecision(3)}${unit})${parityError(r) > PARITY_TOLERANCE ? '  ✗' : ''}`;
    })
    .join('\n');
}

export async function main(argv: string[], cwd = process.env.INIT_CWD ?? process.cwd()): Promise<number> {
  const verify = argv.includes('--verify');
  const args = absolutePaths(argv.filter((a) => a !== '--verify'), cwd);
  const problem = pythonProblem();
  if (problem) {
    process.stderr.write(`error: ${problem}\n`);
    return 2;
  }
  const converted = await runConverter(args, { echo: true });
  if (converted.status !== 0 || !verify || args.includes('--help') || args.includes('-h')) {
    process.stdout.write(converted.stdout);
    return converted.status;
  }
  const out = valueOf(args, '--out')!;
  const scratch = await mkdtemp(join(tmpdir(), 'celfarm-parity-'));
  try {
    const parityFile = join(scratch, 'parity.safetensors');
    const refArgs = ['parity', '--checkpoint', valueOf(args, '--checkpoint')!, '--out', parityFile];
    for (const flag of ['--clip', '--config', '--sketch-mask']) {
      const v = valueOf(args, flag);
      if (v) refArgs.push(flag, v);
    }
    for (const v of valuesOf(args, '--reference-mask')) refArgs.push('--reference-mask', v);
    for (const v of valuesOf(args, '--line-extractor')) refArgs.push('--line-extractor', v);
    if (args.includes('--attention-injection')) refArgs.push('--attention-injection');
    process.stderr.write('verifying: PyTorch reference outputs …\n');
    const ref = await runConverter(refArgs, { echo: true });
    if (ref.status !== 0) return ref.status;
    process.stderr.write('verifying: the same inputs through onnxruntime-node …\n');
    const rows = await checkParity(out, parityFile);
    process.stderr.write(`${formatParity(rows)}\n`);
    const worst = Math.max(...rows.map(parityError));
    if (worst > PARITY_TOLERANCE) {
      process.stderr.write(`error: parity failed: largest difference ${worst.toExponential(2)} > ${PARITY_TOLERANCE}\n`);
      return 1;
    }
    process.stderr.write(`parity ok: ${rows.length} outputs within ${PARITY_TOLERANCE} (largest ${worst.toExponential(2)})\n`);
    process.stdout.write(converted.stdout);
    return 0;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

if (process.argv[1] && pathToFileURL(realpathSync(process.argv[1])).href === import.meta.url) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (e: unknown) => {
      process.stderr.write(`error: ${(e as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
