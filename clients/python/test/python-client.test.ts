/**
 * Runs the Python client's unittest suite (clients/python/tests) against a real farm, so `npm test`
 * covers it: one worker, an API key, then `python3 -m unittest discover` with CELFARM_API and
 * CELFARM_KEY set. Every test must run (none skipped) and pass.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createApiKey, ROOT, startFarm, type Farm } from '../../../test/harness.ts';

function run(cmd: string, args: string[], env: Record<string, string>, timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('Python client (clients/python)', () => {
  let farm: Farm;
  let key: string;
  before(async () => {
    // Loopback webhook targets allowed, for the delivery test's local receiver.
    farm = await startFarm({ workers: 1, env: { WEBHOOK_ALLOW_HOSTS: '127.0.0.1' } });
    key = await createApiKey(farm);
  });
  after(async () => {
    await farm?.stop();
  });

  it('passes its unittest suite against a real farm', async (t) => {
    const { code, output } = await run(
      'python3',
      ['-m', 'unittest', 'discover', '-s', 'clients/python/tests', '-v'],
      { CELFARM_API: farm.apiUrl, CELFARM_KEY: key, PYTHONPATH: join(ROOT, 'clients/python'), PYTHONDONTWRITEBYTECODE: '1', CELFARM_TEST_WORKER_PID: String(farm.workers[0]!.child.pid) },
      50_000,
    );
    assert.equal(code, 0, output);
    assert.match(output, /^OK$/m, output);
    assert.doesNotMatch(output, /skipped/i, `every test must run against the farm:\n${output}`);
    t.diagnostic(/^Ran \d+ tests? in .*$/m.exec(output)?.[0] ?? '');
    for (const line of output.split('\n').filter((l) => l.includes(' ... '))) t.diagnostic(line);
  });
});
