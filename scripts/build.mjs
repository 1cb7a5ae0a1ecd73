#!/usr/bin/env node
// Builds the services as compiled JavaScript, each into a self-contained folder that a container
// image copies as is (no TypeScript, no tsx, no dev dependencies at run time):
//
//   dist/api/      apps/api/dist/server/{main,admin}.mjs, apps/dashboard/dist/ (the built app),
//                  node_modules/ (only the packages the bundles import, and theirs), package.json
//   dist/worker/   apps/worker/dist/server/{main,worker-entry}.mjs, node_modules/, package.json
//
// Usage: node scripts/build.mjs [--out dist] [--only api,worker] [--no-dashboard]
//   node dist/api/apps/api/dist/server/main.mjs        # the API, same environment as README
//   node dist/worker/apps/worker/dist/server/main.mjs  # a worker
//
// How: esbuild bundles our own workspace code (@celfarm/*, TypeScript) per entry, as tsx runs it
// in development (same transform: legacy decorators from tsconfig; our NestJS code names every
// injection with @Inject, so nothing depends on emitDecoratorMetadata). Every npm package stays
// external and is copied, from the installed node_modules (so exactly the lockfile's versions),
// into the folder's node_modules, laid out so that Node resolves each package to the same version
// it resolves to in the repository; the build checks that layout before it finishes.
// Bundles keep the repository's relative layout (apps/<app>/dist/server is as deep as
// apps/<app>/src/<dir>), so paths computed from import.meta (the API's dashboard folder, the
// inference thread's `./worker-entry.mjs` next to the worker bundle) hold in the bundle too.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { build } from 'esbuild';
import { ensureDashboard } from './ensure-deps.mjs';

const root = resolve(new URL('..', import.meta.url).pathname);

/** The services and their entry points: output name → source. */
export const TARGETS = {
  api: {
    outDir: 'apps/api/dist/server',
    entries: { main: 'apps/api/src/main.ts', admin: 'apps/api/src/admin.ts' },
    dashboard: true,
  },
  worker: {
    outDir: 'apps/worker/dist/server',
    // The inference thread: PipelineHost starts `./worker-entry.mjs` beside the calling bundle.
    entries: { main: 'apps/worker/src/main.ts', 'worker-entry': 'libs/pipeline/src/host/worker.ts' },
    dashboard: false,
  },
};

function parseArgs(argv) {
  const opts = { out: join(root, 'dist'), only: Object.keys(TARGETS), dashboard: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out') opts.out = resolve(argv[++i]);
    else if (a === '--only') opts.only = argv[++i].split(',').filter(Boolean);
    else if (a === '--no-dashboard') opts.dashboard = false;
    else if (a === '--help' || a === '-h') {
      console.log('usage: node scripts/build.mjs [--out dist] [--only api,worker] [--no-dashboard]');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  for (const t of opts.only) if (!TARGETS[t]) throw new Error(`unknown target ${t} (known: ${Object.keys(TARGETS).join(', ')})`);
  return opts;
}

const readJson = (p) => JSON.parse(readFileSync(p, 'utf8'));

/** `@scope/name/sub/path` → `@scope/name`; `name/sub` → `name`. */
const packageName = (spec) => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');

/** Node's lookup of package `name` from directory `from`: the nearest `node_modules/<name>`. */
function findPackageDir(name, from) {
  for (let dir = from; ; dir = dirname(dir)) {
    if (!dir.endsWith(`${sep}node_modules`)) {
      const candidate = join(dir, 'node_modules', name);
      if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate);
    }
    if (dirname(dir) === dir) return null;
  }
}

/** An installed package: where it lives in the repository and what it is. */
function packageAt(dir) {
  const pkg = readJson(join(dir, 'package.json'));
  return { dir, name: pkg.name, version: pkg.version, pkg };
}

/**
 * esbuild plugin: bundles workspace code, leaves npm packages external, and records which
 * installed package (name@version) each bundle imports.
 */
function externalPackages(imported) {
  return {
    name: 'celfarm-external-packages',
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.kind === 'entry-point' || isBuiltin(args.path) || args.path.startsWith('@celfarm/')) return undefined;
        const name = packageName(args.path);
        const dir = findPackageDir(name, args.resolveDir);
        if (!dir) return { errors: [{ text: `cannot find package ${name} (imported by ${relative(root, args.importer)})` }] };
        const found = packageAt(dir);
        const seen = imported.get(name);
        if (seen && seen.version !== found.version) {
          return { errors: [{ text: `${name} resolves to ${seen.version} (${relative(root, seen.dir)}) and ${found.version} (${relative(root, dir)}) in one bundle` }] };
        }
        imported.set(name, seen ?? found);
        return { path: args.path, external: true };
      });
    },
  };
}

/**
 * Lays the imported packages and everything they depend on into `tree/node_modules`: a package
 * goes as high as it can (`tree/node_modules/<name>`) unless that place holds another version,
 * in which case it nests under the package that needs it. Whole package folders are copied,
 * nested node_modules included.
 */
function layOutPackages(tree, imported) {
  /** tree-relative folder of a placed package → the installed package it copies. */
  const placed = new Map();
  const queue = [];
  const place = (at, found) => {
    placed.set(at, found);
    queue.push(at);
  };
  for (const found of imported.values()) place(join('node_modules', found.name), found);

  // Which installed package a lookup of `name` from tree folder `at` reaches, given `placed`.
  const lookup = (name, at) => {
    for (let dir = at; ; dir = dirname(dir)) {
      if (!dir.endsWith('node_modules') && !dir.endsWith(`${sep}node_modules`)) {
        const slot = join(dir === '.' ? '' : dir, 'node_modules', name);
        if (placed.has(slot)) return { slot, found: placed.get(slot) };
      }
      if (dir === '.' || dir === '') return null;
    }
  };

  const depsOf = ({ pkg }) => {
    const optional = new Set([...Object.keys(pkg.optionalDependencies ?? {}), ...Object.entries(pkg.peerDependenciesMeta ?? {}).filter(([, m]) => m?.optional).map(([n]) => n)]);
    const names = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})]);
    return [...names].map((name) => ({ name, optional: optional.has(name) || !!pkg.peerDependencies?.[name] }));
  };

  while (queue.length) {
    const at = queue.shift();
    const found = placed.get(at);
    // Nested node_modules of the installed package travel with it; register them as placed.
    const nested = join(found.dir, 'node_modules');
    if (existsSync(nested)) {
      for (const entry of readdirSync(nested)) {
        const names = entry.startsWith('@') ? readdirSync(join(nested, entry)).map((n) => `${entry}/${n}`) : entry.startsWith('.') ? [] : [entry];
        for (const n of names) {
          const slot = join(at, 'node_modules', n);
          if (!placed.has(slot) && existsSync(join(nested, n, 'package.json'))) place(slot, packageAt(realpathSync(join(nested, n))));
        }
      }
    }
    for (const dep of depsOf(found)) {
      const dir = findPackageDir(dep.name, found.dir);
      if (!dir) {
        if (dep.optional) continue;
        throw new Error(`${found.name}@${found.version} needs ${dep.name}, which is not installed`);
      }
      const want = packageAt(dir);
      const reached = lookup(dep.name, at);
      if (reached?.found.version === want.version) continue;
      const top = join('node_modules', want.name);
      // Nothing of that name is reachable: hoist to the top when free; else nest under `at`.
      const slot = !reached && !placed.has(top) ? top : join(at, 'node_modules', want.name);
      if (placed.has(slot)) throw new Error(`cannot place ${want.name}@${want.version} for ${found.name}: ${slot} holds ${placed.get(slot).version}`);
      place(slot, want);
    }
  }

  // Check: from every placed package, every dependency resolves to the version it resolves to
  // in the repository.
  for (const [at, found] of placed) {
    for (const dep of depsOf(found)) {
      const dir = findPackageDir(dep.name, found.dir);
      if (!dir) continue;
      const want = packageAt(dir);
      const reached = lookup(dep.name, at);
      if (reached?.found.version !== want.version) {
        throw new Error(`layout check: ${found.name} at ${at} would load ${dep.name}@${reached?.found.version ?? 'nothing'}, needs ${want.version}`);
      }
    }
  }

  // Copy, outermost first (a nested slot may sit inside a copied folder: it is the same package).
  for (const at of [...placed.keys()].sort((a, b) => a.length - b.length)) {
    const dest = join(tree, at);
    if (existsSync(dest)) continue;
    cpSync(placed.get(at).dir, dest, { recursive: true, dereference: true, filter: keepFile });
  }
  return placed;
}

/** Leaves out what nothing loads at run time: type declarations and source maps of packages. */
function keepFile(src) {
  return !/\.d\.[cm]?ts$|\.d\.ts\.map$|\.js\.map$|\.mjs\.map$|\.cjs\.map$/.test(src);
}

/** onnxruntime-node ships binaries for every platform; keep this one's (the image's). */
function pruneForeignBinaries(tree) {
  for (const ort of findAll(tree, 'onnxruntime-node')) {
    const bin = join(ort, 'bin');
    if (!existsSync(bin)) continue;
    for (const napi of readdirSync(bin)) {
      for (const platform of readdirSync(join(bin, napi))) {
        const pdir = join(bin, napi, platform);
        if (platform !== process.platform) {
          rmSync(pdir, { recursive: true, force: true });
          continue;
        }
        for (const arch of readdirSync(pdir)) if (arch !== process.arch) rmSync(join(pdir, arch), { recursive: true, force: true });
      }
    }
  }
}

function findAll(dir, name, out = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const full = join(dir, entry.name);
    if (entry.name === name && existsSync(join(full, 'package.json'))) out.push(full);
    else findAll(full, name, out);
  }
  return out;
}

function duBytes(p) {
  const s = statSync(p);
  if (!s.isDirectory()) return s.size;
  return readdirSync(p).reduce((n, e) => n + duBytes(join(p, e)), 0);
}

async function buildTarget(name, target, out) {
  const started = Date.now();
  const tree = join(out, name);
  rmSync(tree, { recursive: true, force: true });
  const imported = new Map();
  const result = await build({
    absWorkingDir: root,
    entryPoints: Object.fromEntries(Object.entries(target.entries).map(([n, src]) => [n, join(root, src)])),
    outdir: join(tree, target.outDir),
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // NestJS and our error messages use class names; the bundle must not rename classes.
    keepNames: true,
    sourcemap: 'linked',
    sourcesContent: false,
    logLevel: 'warning',
    metafile: true,
    plugins: [externalPackages(imported)],
  });
  if (result.errors.length) throw new Error(`${name}: esbuild failed`);
  const placed = layOutPackages(tree, imported);
  pruneForeignBinaries(tree);
  if (target.dashboard) {
    const dist = join(root, 'apps/dashboard/dist');
    if (!existsSync(join(dist, 'index.html'))) throw new Error('apps/dashboard/dist is not built (run without --no-dashboard)');
    cpSync(dist, join(tree, 'apps/dashboard/dist'), { recursive: true });
  }
  const rootPkg = readJson(join(root, 'package.json'));
  const dependencies = Object.fromEntries([...imported.values()].sort((a, b) => a.name.localeCompare(b.name)).map((p) => [p.name, p.version]));
  writeFileSync(
    join(tree, 'package.json'),
    `${JSON.stringify({ name: `celfarm-${name}`, version: rootPkg.version, private: true, type: 'module', engines: rootPkg.engines, dependencies }, null, 2)}\n`,
  );
  const mb = (b) => `${(b / 1e6).toFixed(1)} MB`;
  console.log(
    `built ${name}: ${relative(root, tree) || tree} — ${Object.keys(target.entries).map((e) => `${e}.mjs`).join(', ')}; ` +
      `${placed.size} packages (${Object.keys(dependencies).length} imported), node_modules ${mb(duBytes(join(tree, 'node_modules')))}, ` +
      `bundles ${mb(duBytes(join(tree, target.outDir)))}; ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
}

const opts = parseArgs(process.argv.slice(2));
if (opts.dashboard && opts.only.some((t) => TARGETS[t].dashboard)) ensureDashboard(root);
mkdirSync(opts.out, { recursive: true });
for (const name of opts.only) await buildTarget(name, TARGETS[name], opts.out);
