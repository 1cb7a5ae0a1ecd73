/** GET /v1/queues: job counts per farm queue and state (the whole farm's, not one project's). */
import { Controller, Get, Inject } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { createZodDto } from 'nestjs-zod';
import { queueDepthsSchema, type QueueDepths } from '@celfarm/contract';
import type { FarmQueues } from '@celfarm/jobs';
import { RequireScope } from '../auth/principal.ts';
import { FARM_QUEUES } from '../core/tokens.ts';

class QueueDepthsDto extends createZodDto(queueDepthsSchema) {}

@ApiTags('operations')
@Controller('v1/queues')
export class QueuesController {
  constructor(@Inject(FARM_QUEUES) private readonly farmQueues: FarmQueues) {}

  @Get()
  @RequireScope('read')
  @ApiOperation({ summary: 'Queue depths: jobs per queue and state, farm-wide' })
  @ApiResponse({ status: 200, description: 'Jobs per queue (prepare, frames, shots) and state', type: QueueDepthsDto })
  async depths(): Promise<QueueDepths> {
    return { queues: await this.farmQueues.depths() };
  }
}
