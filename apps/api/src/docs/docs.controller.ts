/**
 * Swagger UI at /docs, from swagger-ui-dist (a dependency of @nestjs/swagger), reading /docs/json.
 * No inline script (the page's CSP allows scripts from 'self' only): the UI starts from init.js.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Controller, Get, Module, Param, Res } from '@nestjs/common';
import { RouteConfig } from '@nestjs/platform-fastify';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { notFound } from '../core/api-error.ts';
import { DOCS_CSP, cspRouteConfig } from '../core/security-headers.ts';
import { LICENSE_TEXT } from './license.ts';

const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'application/javascript; charset=utf-8',
  'swagger-ui-standalone-preset.js': 'application/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
};

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>celfarm API</title>
  <link rel="icon" href="/docs/assets/favicon-32x32.png">
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
  <script src="/docs/assets/init.js"></script>
</body>
</html>
`;

// validatorUrl null: the UI would otherwise load a badge from validator.swagger.io.
const INIT = `window.ui = SwaggerUIBundle({
  url: '/docs/json', dom_id: '#swagger-ui', deepLinking: true, validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: 'StandaloneLayout',
});
`;

let assetDir: string | undefined;
const cache = new Map<string, Buffer>();

function asset(name: string): Buffer {
  let bytes = cache.get(name);
  if (!bytes) {
    if (!assetDir) {
      const fromSwagger = createRequire(createRequire(import.meta.url).resolve('@nestjs/swagger'));
      assetDir = dirname(fromSwagger.resolve('swagger-ui-dist/package.json'));
    }
    bytes = readFileSync(join(assetDir, name));
    cache.set(name, bytes);
  }
  return bytes;
}

@ApiExcludeController()
@Controller('docs')
export class DocsController {
  @Get()
  @RouteConfig(cspRouteConfig(DOCS_CSP))
  page(@Res() reply: FastifyReply): void {
    void reply.header('content-type', 'text/html; charset=utf-8').send(PAGE);
  }

  /** The terms `info.license` of the OpenAPI document points to. */
  @Get('license')
  license(@Res() reply: FastifyReply): void {
    void reply.header('content-type', 'text/plain; charset=utf-8').send(LICENSE_TEXT);
  }

  @Get('assets/:name')
  asset(@Param('name') name: string, @Res() reply: FastifyReply): void {
    if (name === 'init.js') {
      void reply.header('content-type', 'application/javascript; charset=utf-8').header('cache-control', 'no-cache').send(INIT);
      return;
    }
    const type = ASSETS[name];
    if (!type) throw notFound('asset', name);
    void reply.header('content-type', type).header('cache-control', 'public, max-age=86400').send(asset(name));
  }
}

@Module({ controllers: [DocsController] })
export class DocsModule {}
