/** /v1/workers: the live worker registry. */
import { Controller, Get, Inject } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';
import { RequireScope } from '../auth/principal.ts';
import { WorkersService } from './workers.service.ts';

const workerViewSchema = z.object({
  id: z.string(),
  host: z.string(),
  pid: z.number().int(),
  provider: z.string(),
  pack: z.string(),
  /** Job id being processed, or null when idle. */
  currentJob: z.string().min(1).nullable(),
  startedAt: z.string(),
  /** Last heartbeat. */
  lastSeen: z.string(),
  framesDone: z.number().int(),
});
const workerListSchema = z.object({ workers: z.array(workerViewSchema) });
type WorkerList = z.output<typeof workerListSchema>;
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
