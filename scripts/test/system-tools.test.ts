/**
 * `npm test` on a fresh machine: a missing tool is installed (apt-get, as root or through
 * passwordless sudo) or reported as an error naming it and its Debian package, never turned into
 * a skip; and a skipped test or suite, which Node's own summary may count as 0, is listed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ensureSystemTools, toolsNeededBy, type ToolName } from '../system-tools.mjs';

const ROOT = resolve(import.meta.dirname, '../..');

/** A machine where `installed` is what apt-get has put there; `run` plays apt-get. */
function machine(installed: Set<ToolName>, provides: Record<string, ToolName>, aptWorks = true) {
  const commands: string[][] = [];
  return {
    commands,
    present: (name: ToolName) => installed.has(name),
    run: (_prefix: string[], args: string[]) => {
      commands.push(args);
      if (!aptWorks) return false;
      if (args[0] === 'install') for (const pkg of args.filter((a) => !a.startsWith('-')).slice(1)) if (provides[pkg]) installed.add(provides[pkg]);
      return true;
    },
    log: () => undefined,
  };
}

describe('system tools for npm test and the demo', () => {
  it('reports a missing tool as an error naming it, its Debian package and the command, when it may not install', () => {
    const m = machine(new Set(['redis-server']), {});
    const problems = ensureSystemTools(['redis-server', 'promtool'], { ...m, apt: null });
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^promtool is missing \(Debian: prometheus\): run `sudo apt-get install -y --no-install-recommends prometheus`/);
    assert.match(problems[0]!, /as root/);
    assert.deepEqual(m.commands, [], 'nothing was installed');
  });

  it('installs what is missing with apt-get when it may, and then finds it', () => {
    const m = machine(new Set(['redis-server']), { prometheus: 'promtool', chromium: 'chromium' });
    const problems = ensureSystemTools(['redis-server', 'promtool', 'chromium'], { ...m, apt: [] });
    assert.deepEqual(problems, []);
    assert.deepEqual(m.commands, [['update', '-q'], ['install', '-y', '-q', '--no-install-recommends', 'prometheus', 'chromium']]);
  });

  it('still reports the tool when apt-get fails', () => {
    const m = machine(new Set(), { chromium: 'chromium' }, false);
    const problems = ensureSystemTools(['chromium'], { ...m, apt: ['sudo', '-n'] });
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^chromium is missing \(Debian: chromium\) and apt-get did not install it/);
  });

  it('says when CHROMIUM_PATH points nowhere, and installs nothing for it', () => {
    const m = machine(new Set(), { chromium: 'chromium' });
    const problems = ensureSystemTools(['chromium'], { env: { CHROMIUM_PATH: '/nonexistent/chromium' }, apt: [], run: m.run, log: m.log });
    assert.deepEqual(problems, [
      "chromium is missing: CHROMIUM_PATH is /nonexistent/chromium, which does not exist: point it at a Chromium, or unset it for Debian's " +
        '(`sudo apt-get install -y --no-install-recommends chromium`)',
    ]);
    assert.deepEqual(m.commands, []);
  });

  it('knows which tools the test files need, through the helpers they import', () => {
    const need = (f: string) => toolsNeededBy([join(ROOT, f)]).sort();
    assert.deepEqual(need('test/e2e/dashboard.test.ts'), ['chromium', 'redis-server']);
    assert.deepEqual(need('test/e2e/farm.test.ts'), ['promtool', 'redis-server']);
    assert.deepEqual(need('apps/api/test/security.test.ts'), ['chromium', 'redis-server']);
    assert.deepEqual(need('apps/worker/test/events.test.ts'), ['redis-server'], 'through ./fixtures.ts');
    assert.deepEqual(need('clients/python/test/python-client.test.ts'), ['python3', 'redis-server']);
    assert.deepEqual(need('test/e2e/cluster.test.ts'), ['redis-cli', 'redis-server']);
    assert.deepEqual(need('tools/convert/test/convert.test.ts'), ['python3-torch']);
    assert.deepEqual(need('libs/pipeline/test/sampling-rng.test.ts'), []);
  });
});

describe('what did not run', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'celfarm-skips-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lists a skipped suite, which the runner summary counts as "skipped 0"', async () => {
    const file = join(dir, 'browser.test.mjs');
    await writeFile(file, [
      "import { describe, it } from 'node:test';",
      "describe('dashboard in a browser', { skip: 'no chromium at /usr/bin/chromium' }, () => { it('signs in', () => {}); });",
      "describe('api', () => { it('answers', () => {}); it('renders docs', (t) => t.skip('no chromium')); it('later', { todo: true }, () => {}); });",
    ].join('\n'));
    const report = join(dir, 'not-run.jsonl');
    const r = spawnSync(process.execPath, [
      '--test', '--test-reporter=tap', '--test-reporter-destination=stdout',
      `--test-reporter=${join(ROOT, 'scripts/skip-reporter.mjs')}`, `--test-reporter-destination=${report}`, file,
    // Without NODE_TEST_CONTEXT, which would make it report to this runner instead.
    ], { encoding: 'utf8', env: { ...process.env, NODE_TEST_CONTEXT: undefined } });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^# skipped 1$/m, "the runner's own count misses the suite");
    const lines = (await readFile(report, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
    assert.deepEqual(lines.map(({ kind, what, name, reason }) => ({ kind, what, name, reason })), [
      { kind: 'skip', what: 'suite', name: 'dashboard in a browser', reason: 'no chromium at /usr/bin/chromium' },
      { kind: 'skip', what: 'test', name: 'renders docs', reason: 'no chromium' },
      { kind: 'todo', what: 'test', name: 'later', reason: '' },
    ]);
    assert.ok(lines.every((l) => l.file === file));
  });
});
