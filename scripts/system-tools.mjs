// The Debian packages the demo and the tests run for real (redis-server, redis-cli, promtool,
// Chromium, Python): how to find each, which test files need it, and how to install what is
// missing: with apt-get as root or through passwordless sudo, otherwise a message that says what
// to run.
// Node builtins only (it runs before `npm ci`).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

const onPath = (command) => spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;

/** The interpreter the converter runs (tools/convert/src/python.ts): Debian's, whose packages apt installs. */
const DEBIAN_PYTHON = '/usr/bin/python3';
const DEBIAN_CHROMIUM = '/usr/bin/chromium';
const converterPython = (env) => env.CELFARM_PYTHON || DEBIAN_PYTHON;
const chromiumPath = (env) => env.CHROMIUM_PATH || DEBIAN_CHROMIUM;

/**
 * Every tool, keyed by name: `packages` are the Debian packages that provide it, `present` finds
 * it, `neededBy` matches the source of a test file (or of a file it imports) that runs it, and
 * `override` explains a setting that points elsewhere, where installing the packages cannot help.
 */
export const SYSTEM_TOOLS = {
  'redis-server': {
    packages: ['redis-server'],
    present: () => onPath('redis-server') || existsSync('/usr/bin/redis-server'),
    neededBy: /\bstartRedis(?:Cluster)?\b|redis-server/,
  },
  'redis-cli': {
    packages: ['redis-tools'],
    present: () => onPath('redis-cli') || existsSync('/usr/bin/redis-cli'),
    neededBy: /\bstartRedisCluster\b|redis-cli/,
  },
  promtool: {
    packages: ['prometheus'],
    present: () => onPath('promtool'),
    neededBy: /\bpromtool\b/,
  },
  chromium: {
    packages: ['chromium'],
    present: (env) => existsSync(chromiumPath(env)),
    neededBy: /playwright-core/,
    override: (env) => chromiumPath(env) !== DEBIAN_CHROMIUM && `CHROMIUM_PATH is ${env.CHROMIUM_PATH}, which does not exist: point it at a Chromium, or unset it for Debian's`,
  },
  python3: {
    packages: ['python3'],
    present: () => onPath('python3'),
    neededBy: /'python3'/,
  },
  'python3-torch': {
    packages: ['python3-torch', 'python3-onnx', 'python3-numpy', 'python3-yaml'],
    present: (env) => spawnSync(converterPython(env), ['-c', 'import torch, onnx, yaml, numpy'], { stdio: 'ignore' }).status === 0,
    neededBy: /\bpythonProblem\b/,
    override: (env) => converterPython(env) !== DEBIAN_PYTHON && `CELFARM_PYTHON is ${env.CELFARM_PYTHON}, which cannot import torch, onnx, yaml and numpy: install them for it, or unset it for Debian's ${DEBIAN_PYTHON}`,
  },
};

/**
 * The tools the given test files need: a tool counts when its `neededBy` matches a file or a
 * file it imports by a relative path (helpers such as test/harness.ts start Redis for many files).
 */
export function toolsNeededBy(files, read = (f) => readFileSync(f, 'utf8')) {
  const seen = new Set();
  const sources = [];
  const visit = (file) => {
    if (seen.has(file)) return;
    seen.add(file);
    let text;
    try {
      text = read(file);
    } catch {
      return;
    }
    sources.push(text);
    for (const m of text.matchAll(/from\s+'(\.{1,2}\/[^']+\.ts)'/g)) visit(resolve(dirname(file), m[1]));
  };
  for (const f of files) visit(resolve(f));
  return Object.keys(SYSTEM_TOOLS).filter((name) => sources.some((s) => SYSTEM_TOOLS[name].neededBy.test(s)));
}

/** How this process may run apt-get: directly as root, through passwordless sudo, or not at all. */
export function aptPrefix() {
  if (!existsSync('/usr/bin/apt-get')) return null;
  if (process.getuid?.() === 0) return [];
  return spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0 ? ['sudo', '-n'] : null;
}

/** Runs apt-get with `args` (after `prefix`, e.g. sudo -n) non-interactively; true when it succeeded. */
export function runApt(prefix, args) {
  const [cmd, ...rest] = [...prefix, 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', ...args];
  return spawnSync(cmd, rest, { stdio: 'inherit' }).status === 0;
}

/**
 * Makes sure the named tools are present, installing the missing ones with apt-get when this
 * process may (see aptPrefix). Returns one line per tool still missing, naming it, its Debian
 * packages and the command that installs them; an empty list means everything is there.
 * `present`, `apt` (null: may not install), `run` and `log` can be replaced, for tests.
 */
export function ensureSystemTools(names, {
  env = process.env,
  present = (name) => SYSTEM_TOOLS[name].present(env),
  apt,
  run = runApt,
  log = (line) => console.error(line),
} = {}) {
  const missing = () => names.filter((n) => !present(n));
  let absent = missing();
  if (absent.length === 0) return [];
  const installable = absent.filter((n) => !SYSTEM_TOOLS[n].override?.(env));
  if (installable.length > 0 && apt === undefined) apt = aptPrefix();
  if (installable.length > 0 && apt) {
    const packages = [...new Set(installable.flatMap((n) => SYSTEM_TOOLS[n].packages))];
    log(`installing ${installable.join(', ')} (Debian: ${packages.join(' ')}) with apt-get …`);
    if (run(apt, ['update', '-q']) && run(apt, ['install', '-y', '-q', '--no-install-recommends', ...packages])) absent = missing();
    else log('apt-get failed');
  }
  return absent.map((n) => {
    const t = SYSTEM_TOOLS[n];
    const how = `\`sudo apt-get install -y --no-install-recommends ${t.packages.join(' ')}\``;
    const override = t.override?.(env);
    if (override) return `${n} is missing: ${override} (${how})`;
    return `${n} is missing (Debian: ${t.packages.join(' ')})${apt ? ' and apt-get did not install it' : ''}: run ${how}` +
      (apt ? '' : ', or rerun as root (or with passwordless sudo) to have it installed');
  });
}

/** ensureSystemTools, exiting with status 1 and every problem listed when something is missing. */
export function ensureSystemToolsOrExit(names, what) {
  const problems = ensureSystemTools(names);
  if (problems.length === 0) return;
  console.error(`\n${what} cannot run; missing:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
  process.exit(1);
}
