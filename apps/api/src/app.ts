/**
 * `createApp(config)`: the API as a NestJS application on Fastify, initialised and ready to
 * `listen` (or to `inject` through `app.getHttpAdapter().getInstance()` in tests).
 */
import 'reflect-metadata';
import multipart from '@fastify/multipart';
import type { FastifyInstance } from 'fastify';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { LoggerService, LogLevel } from '@nestjs/common';
import type { Config } from '@celfarm/config';
import type { FarmMetrics } from '@celfarm/metrics';
import type { ObjectStore } from '@celfarm/storage';
import { AppModule } from './app.module.ts';
import type { CoreOptions } from './core/core.module.ts';
import { ApiExceptionFilter } from './core/error-filter.ts';
import { serveDashboard } from './dashboard/static.ts';
import { installHttpMetrics } from './core/http-metrics.ts';
import { LIMITS } from './core/limits.ts';
import { presignsObjectUrls } from './core/object-urls.ts';
import { installSecurityHeaders } from './core/security-headers.ts';
import { METRICS, OBJECT_STORE } from './core/tokens.ts';
import { serveOpenApi } from './docs/openapi.ts';

export interface AppOptions extends CoreOptions {
  /** Nest logger; `false` silences it (tests). Default: error, warn, log. */
  logger?: LoggerService | LogLevel[] | false;
}

export async function createApp(config: Config, options: AppOptions = {}): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({ bodyLimit: LIMITS.jsonBytes });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config, options), adapter, {
    logger: options.logger ?? ['error', 'warn', 'log'],
    // Boot errors (bad pack, unreachable S3) reach the caller instead of exiting the process.
    abortOnError: false,
  });
  try {
    // First, so that every answer carries the headers, those of hooks that answer early included.
    await installSecurityHeaders(app, config, await presignedImageOrigins(config, app.get<ObjectStore>(OBJECT_STORE)));
    await app.register(multipart, {
      limits: {
        fileSize: LIMITS.fileBytes,
        fieldSize: LIMITS.requestFieldBytes,
        fields: 4,
        // Frames plus reference and background; the handler refuses frame MAX_FRAMES + 1 with a 400.
        files: config.MAX_FRAMES + 3,
        parts: config.MAX_FRAMES + 8,
      },
      throwFileSizeLimit: true,
    });
    acceptImageBodies(app.getHttpAdapter().getInstance());
    app.useGlobalFilters(new ApiExceptionFilter());
    installHttpMetrics(app.getHttpAdapter().getInstance(), app.get<FarmMetrics>(METRICS));
    serveOpenApi(app);
    await serveDashboard(app);
    await app.init();
  } catch (e) {
    await app.close();
    throw e;
  }
  return app;
}

/**
 * The origin of the object store's presigned URLs, which the dashboard shows as images: read off
 * a URL the store signs, so it is exactly what the SDK makes of S3_ENDPOINT, region, bucket and
 * path style. None when the API serves the images itself.
 */
async function presignedImageOrigins(config: Config, objects: ObjectStore): Promise<string[]> {
  if (!presignsObjectUrls(config)) return [];
  return [new URL(await objects.presignGet('celfarm-origin-probe', 60)).origin];
}

/** Raw image bodies for `PUT /v1/shots/:id/…/input` (uploads through the API), up to one image file. */
function acceptImageBodies(fastify: FastifyInstance): void {
  for (const type of [/^image\/[a-z0-9.+-]+$/i, 'application/octet-stream']) {
    fastify.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: LIMITS.fileBytes }, (_req, body, done) => done(null, body));
  }
}
