/**
 * The producers' dashboard (apps/dashboard, a single-page app) served by the API at `/`: files
 * of its build (`apps/dashboard/dist`) by path, and index.html for any other GET outside `/v1`
 * that asks for HTML, so a deep link (`/shots/<id>`) loads the app, which then routes itself.
 * Everything else falls through to the API's JSON 404. No auth here: the app signs in itself.
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { join, normalize, resolve, sep } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** Where `npm run build -w @celfarm/dashboard` writes the app. */
export const DASHBOARD_DIST = resolve(import.meta.dirname, '../../../dashboard/dist');

const NOT_BUILT_STYLE = 'body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1d2430}code{background:#eef1f5;padding:.1em .3em;border-radius:3px}';

const NOT_BUILT = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>celfarm dashboard</title>
<style>${NOT_BUILT_STYLE}</style></head>
<body>
<h1>The dashboard is not built yet</h1>
<p>The API is up (<a href="/docs">API docs</a>). To serve the producers' dashboard here, build it once:</p>
<p><code>npm run build -w @celfarm/dashboard</code></p>
<p>then reload this page. The build lands in <code>apps/dashboard/dist</code>.</p>
</body>
</html>
`;

/** That page's own policy: nothing but its inline style (by hash) and links. */
const NOT_BUILT_CSP = `default-src 'none'; style-src 'sha256-${createHash('sha256').update(NOT_BUILT_STYLE).digest('base64')}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

const acceptsHtml = (req: FastifyRequest): boolean => (req.headers.accept ?? '').includes('text/html');

function isApiPath(path: string): boolean {
  return path === '/v1' || path.startsWith('/v1/');
}

/** The build's file for a URL path, relative to `dist`, or null (no such file, or outside dist). */
function builtFile(dist: string, path: string): string | null {
  let rel: string;
  try {
    rel = normalize(decodeURIComponent(path)).replace(/^[/\\]+/, '');
  } catch {
    return null;
  }
  if (rel === '' || rel.split(/[/\\]/).includes('..')) return null;
  const full = join(dist, rel);
  if (!full.startsWith(dist + sep)) return null;
  try {
    return statSync(full).isFile() ? rel : null;
  } catch {
    return null;
  }
}

/** Registers `GET /*` for the dashboard; call before `app.init()`. */
export async function serveDashboard(app: NestFastifyApplication, dist = DASHBOARD_DIST): Promise<void> {
  const fastify = app.getHttpAdapter().getInstance();
  // Registered even before the first build (it only warns), so a build made while the API runs
  // is served without a restart.
  await app.register(fastifyStatic, { root: dist, serve: false });
  const handler = (req: FastifyRequest, reply: FastifyReply): void => {
    const path = req.url.split('?')[0] ?? '/';
    if (isApiPath(path)) return reply.callNotFound();
    if (!existsSync(join(dist, 'index.html'))) {
      if (path === '/' || acceptsHtml(req)) {
        return void reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').header('content-security-policy', NOT_BUILT_CSP).send(NOT_BUILT);
      }
      return reply.callNotFound();
    }
    const file = builtFile(dist, path);
    // Vite names the files under assets/ by content hash: they never change.
    if (file?.startsWith('assets/')) return void reply.sendFile(file, { maxAge: '365d', immutable: true });
    if (file) return void reply.header('cache-control', 'no-cache').sendFile(file, { cacheControl: false });
    if (acceptsHtml(req)) return void reply.header('cache-control', 'no-cache').sendFile('index.html', { cacheControl: false });
    return reply.callNotFound();
  };
  fastify.get('/*', handler);
}
