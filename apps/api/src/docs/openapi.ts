/**
 * The OpenAPI document (from the controllers and their zod DTOs), served as JSON at /docs/json.
 * The Swagger UI at /docs is served by DocsController: @nestjs/swagger's own UI route needs
 * @fastify/static, which this app does not depend on.
 */
import type { INestApplication } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { cleanupOpenApiDoc } from 'nestjs-zod';

export function buildOpenApi(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('celfarm API')
    .setDescription('Render farm for reference-based line-art colorization: submit shots, follow frames, manage workers.')
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'An API key, `cf_…` (admin command `keys create`, or POST /v1/keys)' }, 'bearer')
    .addCookieAuth('celfarm_session', { type: 'apiKey', in: 'cookie', description: 'Dashboard session, set by POST /v1/session' }, 'session')
    .addSecurityRequirements('bearer')
    .addSecurityRequirements('session')
    .build();
  return withSecurity(withMultipartSubmit(cleanupOpenApiDoc(SwaggerModule.createDocument(app, config))));
}

const AUTH_RESPONSES = {
  '401': { description: 'No valid API key or session (`UNAUTHENTICATED`)' },
  '403': { description: 'The key lacks the scope this route needs (`FORBIDDEN`, "needs scope …")' },
  '429': { description: "Over the key's rate limit (`RATE_LIMITED`); see `Retry-After`" },
};

/**
 * Every /v1 route needs a key (bearer or session cookie, as the document's default security);
 * probes, docs and signing in/out need none.
 */
function withSecurity(doc: OpenAPIObject): OpenAPIObject {
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const) {
      const op = item[method];
      if (!op) continue;
      if (!path.startsWith('/v1/')) op.security = [];
      if (op.security?.length === 0) continue;
      op.responses = { ...AUTH_RESPONSES, ...op.responses };
    }
  }
  return doc;
}

/**
 * `@ApiBody` gives every media type one schema; the multipart form of POST /v1/shots has its
 * own parts, so its schema is set here.
 */
function withMultipartSubmit(doc: OpenAPIObject): OpenAPIObject {
  const body = doc.paths['/v1/shots']?.post?.requestBody;
  const content = body && 'content' in body ? body.content : undefined;
  if (content?.['multipart/form-data']) {
    content['multipart/form-data'] = {
      schema: {
        type: 'object',
        required: ['request', 'reference', 'frames'],
        properties: {
          request: {
            type: 'string',
            description: 'JSON: {project, settings?, priority?, failedFrameShare?} (the JSON body without the inputs)',
          },
          reference: { type: 'string', format: 'binary', description: 'Colour reference image' },
          background: { type: 'string', format: 'binary', description: 'Optional background image' },
          frames: { type: 'array', items: { type: 'string', format: 'binary' }, description: 'Sketch frames, one part each, in order' },
        },
      },
    };
  }
  return doc;
}

const DOCUMENT_URLS = new Set(['/docs/json', '/docs/yaml']);

/**
 * @nestjs/swagger serves the documents with async handlers that call `reply.send()` and resolve
 * undefined. While the reply is still in the app's async onSend hooks, Fastify reads that
 * undefined as "nothing sent yet" and sends again; the second write fails after the 200 has gone
 * out, and the reply's status turns 500 — what `celfarm_http_request_duration_seconds` recorded
 * for every GET /docs/json. Resolving with the reply tells Fastify the handler has answered.
 */
function answerOnce(fastify: FastifyInstance): void {
  fastify.addHook('onRoute', (route) => {
    if (!DOCUMENT_URLS.has(route.url)) return;
    const handler = route.handler;
    route.handler = async function (this: FastifyInstance, req: FastifyRequest, reply: FastifyReply) {
      await handler.call(this, req, reply);
      return reply;
    };
  });
}

export function serveOpenApi(app: NestFastifyApplication): void {
  answerOnce(app.getHttpAdapter().getInstance());
  SwaggerModule.setup('docs', app, buildOpenApi(app), { ui: false, jsonDocumentUrl: 'docs/json', yamlDocumentUrl: 'docs/yaml' });
}
