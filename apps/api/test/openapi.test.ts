/**
 * The OpenAPI document as a client's tooling reads it: built without a farm (Nest's preview
 * mode: no Redis, no S3), then linted by Redocly CLI with its recommended rules — zero errors,
 * zero warnings — with the network refused inside the linter's process, so the check runs
 * offline and proves the linter sends nothing anywhere.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { OpenAPIObject } from '@nestjs/swagger';
import { loadConfig } from '@celfarm/config';
import { openApiDocument } from '../src/docs/openapi.ts';

const ROOT = resolve(import.meta.dirname, '../../..');
const REDOCLY = join(ROOT, 'node_modules/@redocly/cli/bin/cli.js');
const REDOCLY_CONFIG = join(ROOT, 'apps/api/src/docs/redocly.yaml');

/** Preloaded into the linter: any TCP connection or DNS lookup is reported on stderr and fails. */
const NO_NETWORK = `
const net = require('node:net');
const dns = require('node:dns');
const refuse = (what) => {
  process.stderr.write('network attempt: ' + what + '\\n');
  throw new Error('network access refused: ' + what);
};
net.Socket.prototype.connect = function (options) { refuse(JSON.stringify(options)); };
dns.lookup = (host) => refuse('dns lookup of ' + host);
dns.promises.lookup = async (host) => refuse('dns lookup of ' + host);
`;

interface LintReport {
  totals: { errors: number; warnings: number; ignored: number };
  problems: { ruleId: string; severity: string; message: string; location: { pointer?: string }[] }[];
}

const OPERATIONS = ['get', 'put', 'post', 'delete', 'patch'] as const;

function operations(doc: OpenAPIObject): { name: string; responses: Record<string, unknown> }[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    OPERATIONS.flatMap((m) => (item[m] ? [{ name: `${m.toUpperCase()} ${path}`, responses: item[m].responses as Record<string, unknown> }] : [])),
  );
}

describe('the OpenAPI document', () => {
  let dir: string;
  let doc: OpenAPIObject;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'celfarm-openapi-'));
    doc = await openApiDocument(loadConfig({}));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lints clean with Redocly CLI, recommended rules: no error, no warning, nothing ignored, offline', async () => {
    const file = join(dir, 'openapi.json');
    const guard = join(dir, 'no-network.cjs');
    await writeFile(file, JSON.stringify(doc, null, 2));
    await writeFile(guard, NO_NETWORK);
    const { REDOCLY_TELEMETRY: _t, ...env } = process.env;
    const run = await promisify(execFile)(
      process.execPath,
      ['--require', guard, REDOCLY, 'lint', '--config', REDOCLY_CONFIG, '--format', 'json', file],
      // Telemetry is off by the config file alone (no REDOCLY_TELEMETRY here), which the guard checks.
      { cwd: dir, env: { ...env, REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' }, timeout: 120_000, maxBuffer: 16 << 20 },
    ).catch((e: { stdout?: string; stderr?: string; message: string }) => {
      // A lint with errors exits non-zero; its report still says which.
      if (e.stdout?.trimStart().startsWith('{')) return { stdout: e.stdout, stderr: e.stderr ?? '' };
      throw new Error(`redocly lint did not run: ${e.message}\n${e.stderr ?? ''}`);
    });
    assert.doesNotMatch(run.stderr, /network attempt/, 'the linter tried to reach the network');
    const report = JSON.parse(run.stdout) as LintReport;
    const problems = report.problems.map((p) => `${p.severity} ${p.ruleId} at ${p.location[0]?.pointer ?? '?'}: ${p.message}`);
    assert.deepEqual(problems, []);
    assert.deepEqual(report.totals, { errors: 0, warnings: 0, ignored: 0 });
  });

  it('names a server, a licence, and a bearer scheme for opaque API keys (no JWT)', async () => {
    assert.deepEqual(doc.servers?.map((s) => s.url), ['/']);
    assert.equal(doc.info.license?.name, 'Proprietary (UNLICENSED)');
    const bearer = doc.components?.securitySchemes?.bearer;
    assert.ok(bearer && 'scheme' in bearer);
    assert.equal(bearer.scheme, 'bearer');
    assert.doesNotMatch(JSON.stringify(bearer), /JWT/);
    assert.equal(JSON.parse(JSON.stringify(bearer)).bearerFormat, undefined);
    const withPublicUrl = await openApiDocument(loadConfig({ PUBLIC_URL: 'https://farm.studio.example/' }));
    assert.deepEqual(withPublicUrl.servers?.map((s) => s.url), ['https://farm.studio.example']);
  });

  it('declares on every /v1 operation a 4xx answer carrying the error body', () => {
    const errorBody = { $ref: '#/components/schemas/ErrorDto' };
    const v1 = operations(doc).filter((o) => o.name.includes(' /v1/'));
    assert.ok(v1.length > 20, `${v1.length} operations under /v1`);
    for (const op of v1) {
      const client = Object.entries(op.responses).filter(([status]) => /^4/.test(status));
      assert.ok(client.length > 0, `${op.name} declares no 4xx`);
      for (const [status, answer] of client) {
        assert.deepEqual((answer as { content?: Record<string, { schema: unknown }> }).content?.['application/json']?.schema, errorBody, `${op.name} ${status}`);
      }
    }
    assert.deepEqual(doc.components?.schemas?.ErrorDto && Object.keys((doc.components.schemas.ErrorDto as { properties: object }).properties), ['error']);
  });
});
