/** The API's root module: infrastructure from the config, then one module per resource. */
import { Module, type DynamicModule } from '@nestjs/common';
import type { Config } from '@celfarm/config';
import { AuthModule } from './auth/auth.module.ts';
import { CoreModule, type CoreOptions } from './core/core.module.ts';
import { DashboardModule } from './dashboard/dashboard.module.ts';
import { DocsModule } from './docs/docs.controller.ts';
import { HealthModule } from './health/health.module.ts';
import { LiveModule } from './live/live.module.ts';
import { ShotsModule } from './shots/shots.module.ts';
import { WebhooksModule } from './webhooks/webhooks.module.ts';
import { WorkersModule } from './workers/workers.module.ts';
import { QaModule } from './qa/qa.module.ts';

@Module({})
export class AppModule {
  static forRoot(config: Config, options: CoreOptions = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [CoreModule.forRoot(config, options), AuthModule, ShotsModule, QaModule, WorkersModule, HealthModule, DocsModule, LiveModule, DashboardModule, WebhooksModule],
    };
  }
}
