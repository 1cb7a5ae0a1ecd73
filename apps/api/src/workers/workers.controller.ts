/** /v1/workers: the live worker registry. */
import { Controller, Get, Inject } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { createZodDto } from 'nestjs-zod';
import { workerListSchema, type WorkerList } from '@celfarm/contract';
import { RequireScope } from '../auth/principal.ts';
import { WorkersService } from './workers.service.ts';

class WorkerListDto extends createZodDto(workerListSchema) {}

@ApiTags('workers')
@Controller('v1/workers')
export class WorkersController {
  constructor(@Inject(WorkersService) private readonly workers: WorkersService) {}

  @Get()
  @RequireScope('read')
  @ApiOperation({ summary: 'Live workers (heartbeat within 3 × HEARTBEAT_MS)' })
  @ApiResponse({ status: 200, type: WorkerListDto })
  async list(): Promise<WorkerList> {
    const workers = await this.workers.list();
    return {
      workers: workers.map((w) => ({
        id: w.id,
        host: w.host,
        pid: w.pid,
        provider: w.provider,
        pack: w.pack,
        currentJob: w.currentJob,
        startedAt: w.startedAt,
        lastSeen: w.lastSeen,
        framesDone: w.framesDone,
      })),
    };
  }
}
