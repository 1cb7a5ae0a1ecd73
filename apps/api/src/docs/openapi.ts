/**
 * The OpenAPI document (from the controllers and their DTOs, nestjs-zod wrappers of the wire
 * contract @celfarm/contract), served as JSON at /docs/json and linted clean by Redocly's
 * recommended rules (apps/api/test/openapi.test.ts). The Swagger UI at /docs is served by
 * DocsController: @nestjs/swagger's own UI route needs @fastify/static, which this app does not
 * depend on.
 */
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DocumentBuilder, SwaggerModule, getSchemaPath, type OpenAPIObject } from '@nestjs/swagger';
import { cleanupOpenApiDoc } from 'nestjs-zod';
import type { Config } from '@celfarm/config';
import { AppModule } from '../app.module.ts';
import { ErrorDto } from '../core/api-error.ts';
import { CONFIG } from '../core/tokens.ts';
import { LICENSE_NAME, LICENSE_PATH } from './license.ts';

/** What the document takes from the config: where clients reach the API. */
export type DocumentConfig = Pick<Config, 'PUBLIC_URL'>;

export function buildOpenApi(app: INestApplication, config: DocumentConfig): OpenAPIObject {
  const document = new DocumentBuilder()
    .setTitle('celfarm API')
    .setDescription('Render farm for reference-based line-art colorization: submit shots, follow frames, manage workers.')
    .setVersion('1')
    .addServer(serverUrl(config), config.PUBLIC_URL ? 'This farm (PUBLIC_URL)' : 'This farm: the host that serves this document')
    // Keys are opaque tokens, not JWTs: no bearerFormat (DocumentBuilder would claim JWT).
    .addBearerAuth(
      { type: 'http', scheme: 'bearer', bearerFormat: undefined, description: 'An API key, `cf_…` (admin command `keys create`, or POST /v1/keys)' },
      'bearer',
    )
    .addCookieAuth('celfarm_session', { type: 'apiKey', in: 'cookie', description: 'Dashboard session, set by POST /v1/session' }, 'session')
    .addSecurityRequirements('bearer')
    .addSecurityRequirements('session')
    .build();
  const doc = withSecurity(withJsonErrors(withMultipartSubmit(cleanupOpenApiDoc(SwaggerModule.createDocument(app, document)))));
  // Relative: resolved against the server, like every URL of the document (DocsController serves it).
  doc.info.license = { name: LICENSE_NAME, url: LICENSE_PATH };
  return doc;
}

/**
 * The document of an API booted with `config`, without a running farm: the modules load in
 * Nest's preview mode, which builds no provider, so nothing connects to Redis or S3.
 */
export async function openApiDocument(config: Config): Promise<OpenAPIObject> {
  const app = await NestFactory.create(AppModule.forRoot(config), new FastifyAdapter(), { preview: true, logger: false, abortOnError: false });
  try {
    return buildOpenApi(app, config);
  } finally {
    await app.close();
  }
}

/** PUBLIC_URL without a trailing slash, else `/`: the host the document was fetched from. */
const serverUrl = (config: DocumentConfig): string => config.PUBLIC_URL?.replace(/\/+$/, '') || '/';

type Responses = NonNullable<OpenAPIObject['paths'][string]['get']>['responses'];

const errorContent = { 'application/json': { schema: { $ref: getSchemaPath(ErrorDto) } } };

/** What the front door (auth/auth.hooks.ts) may answer on any route that needs a key. */
const AUTH_RESPONSES: Responses = {
  '401': { description: 'No valid API key or session (`UNAUTHENTICATED`)', content: errorContent },
  '403': {
    description:
      'The key lacks the scope this route needs (`FORBIDDEN`, "needs scope …"), or a write rides the session cookie from a page of another origin (`CSRF_REJECTED`)',
    content: errorContent,
  },
  '429': { description: "Over the key's rate limit (`RATE_LIMITED`); see `Retry-After`", content: errorContent },
  '503': { description: 'Credentials cannot be checked right now (`UNAVAILABLE`); retry shortly', content: errorContent },
};

/**
 * Routes outside /v1 (probes, metrics) take no input and need no key: none of them answers a 4xx
 * itself; only the HTTP server does, for a request it cannot read, before any route runs.
 */
const UNREADABLE_REQUEST: Responses = {
  '4XX': {
    description:
      "Refused before any route runs: an unparsable request (400), one too slow to arrive (408), headers over the limit (431); Fastify's body `{error, message, statusCode}`",
  },
};

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

/**
 * Every /v1 route needs a key (bearer or session cookie, as the document's default security)
 * and may be refused by the front door; probes, docs and signing in/out need none.
 */
function withSecurity(doc: OpenAPIObject): OpenAPIObject {
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const v1 = path.startsWith('/v1/');
      if (!v1) op.security = [];
      if (op.security?.length === 0) {
        if (!v1) op.responses = { ...op.responses, ...UNREADABLE_REQUEST };
        continue;
      }
      op.responses = withFrontDoor(op.responses);
    }
  }
  return doc;
}

/**
 * Errors are JSON whatever a route produces: `@ApiProduces('image/png', …)` would otherwise
 * document an image route's error body as an image.
 */
function withJsonErrors(doc: OpenAPIObject): OpenAPIObject {
  for (const item of Object.values(doc.paths)) {
    for (const method of METHODS) {
      for (const [status, answer] of Object.entries(item[method]?.responses ?? {})) {
        if (Number(status) < 400 || !answer || !('content' in answer) || !answer.content) continue;
        const errorBody = Object.values(answer.content).some((c) => c.schema && '$ref' in c.schema && c.schema.$ref === errorContent['application/json'].schema.$ref);
        if (errorBody) answer.content = errorContent;
      }
    }
  }
  return doc;
}

/** The route's own answers plus the front door's; a status both give says both. */
function withFrontDoor(own: Responses): Responses {
  const merged: Responses = { ...AUTH_RESPONSES, ...own };
  for (const [status, door] of Object.entries(AUTH_RESPONSES)) {
    const route = own[status];
    if (route && door && 'description' in route && 'description' in door) {
      merged[status] = { ...route, description: `${route.description}; or ${door.description[0]!.toLowerCase()}${door.description.slice(1)}` };
    }
  }
  return merged;
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
  SwaggerModule.setup('docs', app, buildOpenApi(app, app.get<Config>(CONFIG)), { ui: false, jsonDocumentUrl: 'docs/json', yamlDocumentUrl: 'docs/yaml' });
}
