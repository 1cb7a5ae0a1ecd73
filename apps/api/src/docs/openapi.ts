/**
 * The OpenAPI document (from the controllers and their zod DTOs), served as JSON at /docs/json.
 * The Swagger UI at /docs is served by DocsController: @nestjs/swagger's own UI route needs
 * @fastify/static, which this app does not depend on.
 */
import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { cleanupOpenApiDoc } from 'nestjs-zod';

export function buildOpenApi(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('celfarm API')
    .setDescription('Render farm for reference-based line-art colorization: submit shots, follow frames, manage workers.')
    .setVersion('1')
    .build();
  return withMultipartSubmit(cleanupOpenApiDoc(SwaggerModule.createDocument(app, config)));
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

export function serveOpenApi(app: INestApplication): void {
  SwaggerModule.setup('docs', app, buildOpenApi(app), { ui: false, jsonDocumentUrl: 'docs/json', yamlDocumentUrl: 'docs/yaml' });
}
