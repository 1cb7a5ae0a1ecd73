import { Module } from '@nestjs/common';
import { QueuesController } from './queues.controller.ts';

/** API routes that exist for the dashboard (the app's files are served by static.ts). */
@Module({ controllers: [QueuesController] })
export class DashboardModule {}
