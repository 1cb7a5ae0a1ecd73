/**
 * `createApp(config)`: the API as a NestJS application on Fastify, initialised and ready to
 * `listen` (or to `inject` through `app.getHttpAdapter().getInstance()` in tests).
 */
import 'reflect-metadata';
import multipart from '@fastify/multipart';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { LoggerService, LogLevel } from '@nestjs/common';
import type { Config } from '@celfarm/config';
import type { FarmMetrics } from '@celfarm/metrics';
import { AppModule } from './app.module.ts';
import type { CoreOptions } from './core/core.module.ts';
import { ApiExceptionFilter } from './core/error-filter.ts';
import { serveDashboard } from './dashboard/static.ts';
import { installHttpMetrics } from './core/http-metrics.ts';
import { LIMITS } from './core/limits.ts';
import { METRICS } from './core/tokens.ts';
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
