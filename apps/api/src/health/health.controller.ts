/** Probes (/healthz, /readyz) and the Prometheus endpoint (/metrics). */
import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import type { FarmMetrics } from '@celfarm/metrics';
import { METRICS } from '../core/tokens.ts';
import { HealthService } from './health.service.ts';

@ApiTags('operations')
@Controller()
export class HealthController {
  constructor(
    @Inject(HealthService) private readonly health: HealthService,
    @Inject(METRICS) private readonly metrics: FarmMetrics,
  ) {}

  @Get('healthz')
  @ApiOperation({ summary: 'Liveness: the process is up' })
  healthz(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('readyz')
  @ApiOperation({ summary: 'Readiness: Redis and S3 reachable' })
  @ApiResponse({ status: 200, description: 'Ready' })
  @ApiResponse({ status: 503, description: '`error.message` names what is down' })
  async readyz(@Res() reply: FastifyReply): Promise<void> {
    const r = await this.health.readiness();
    if (r.ready) {
      void reply.status(200).send({ status: 'ready', checks: r.checks });
      return;
    }
    const down = Object.entries(r.checks)
      .filter(([, c]) => c.status === 'down')
      .map(([name, c]) => `${name} (${c.status === 'down' ? c.error : ''})`);
    void reply.status(503).send({
      status: 'unavailable',
      checks: r.checks,
      error: { code: 'NOT_READY', message: `down: ${down.join(', ')}` },
    });
  }

  @Get('metrics')
  @ApiOperation({ summary: 'Prometheus metrics' })
  async prometheus(@Res() reply: FastifyReply): Promise<void> {
    const text = await this.metrics.registry.metrics();
    void reply.header('content-type', this.metrics.registry.contentType).send(text);
  }
}
