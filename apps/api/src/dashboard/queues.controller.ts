/** GET /v1/queues: job counts per farm queue and state (the whole farm's, not one project's). */
import { Controller, Get, Inject } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FarmQueues, QueueName } from '@celfarm/jobs';
import { RequireScope } from '../auth/principal.ts';
import { FARM_QUEUES } from '../core/tokens.ts';

export interface QueueDepths {
  /** Queue (prepare, frames, shots) → state (waiting, prioritized, active, delayed, completed, failed, waiting-children) → jobs. */
  queues: Record<QueueName, Record<string, number>>;
}

@ApiTags('operations')
@Controller('v1/queues')
export class QueuesController {
  constructor(@Inject(FARM_QUEUES) private readonly farmQueues: FarmQueues) {}

  @Get()
  @RequireScope('read')
  @ApiOperation({ summary: 'Queue depths: jobs per queue and state, farm-wide' })
  @ApiResponse({ status: 200, description: '`{queues: {prepare|frames|shots: {waiting, prioritized, active, delayed, completed, failed, waiting-children}}}`' })
  async depths(): Promise<QueueDepths> {
    return { queues: await this.farmQueues.depths() };
  }
}
