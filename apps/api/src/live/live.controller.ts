/**
 * GET /v1/live: server-sent events for the dashboard. `event: farm` carries each FarmEvent of the
 * key's project as it is published; `event: shots` carries a compact snapshot of the project's
 * unfinished (and just finished) shots every second while it changes, so sampler steps move live.
 * A comment line every 15 s keeps proxies from closing an idle stream.
 */
import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RequireScope, principalOf } from '../auth/principal.ts';
import { LiveHub } from './live.hub.ts';

const HEARTBEAT_MS = 15_000;

/** One SSE message; `data` is one line of JSON. */
export function sseMessage(event: string, data: string, id?: string): string {
  return `event: ${event}\n${id ? `id: ${id}\n` : ''}data: ${data}\n\n`;
}

@ApiTags('live')
@Controller('v1/live')
export class LiveController {
  constructor(@Inject(LiveHub) private readonly hub: LiveHub) {}

  @Get()
  @RequireScope('read')
  @ApiOperation({
    summary: 'Live events (server-sent events)',
    description:
      "`event: farm` — each farm event of the key's project (data: the FarmEvent JSON). " +
      '`event: shots` — every second while it changes: `{at, shots: [{id, state, updatedAt, progress, etaSeconds, frameCount, counts, ' +
      'frames, active}]}` for unfinished shots and shots finished in the last 30 s; `frames` has one letter per frame ' +
      '(w waiting, a active, c completed, f failed, x cancelled), `active` the stage and sampler step of active frames.',
  })
  @ApiProduces('text/event-stream')
  @ApiResponse({ status: 200, description: 'An endless text/event-stream' })
  stream(@Req() req: FastifyRequest, @Res() reply: FastifyReply): void {
    const { project } = principalOf(req);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // nginx and friends would otherwise buffer the stream.
      'x-accel-buffering': 'no',
    });
    const write = (chunk: string): void => {
      if (!res.writableEnded && !res.destroyed) res.write(chunk);
    };
    write(': celfarm live\nretry: 3000\n\n');
    const heartbeat = setInterval(() => write(': ping\n\n'), HEARTBEAT_MS);
    const unsubscribe = this.hub.subscribe(project, {
      event: (e) => write(sseMessage('farm', JSON.stringify(e), e.id)),
      // A slow reader skips snapshots (each one supersedes the last) instead of buffering them.
      snapshot: (json) => {
        if (!res.writableNeedDrain) write(sseMessage('shots', json));
      },
      close: () => res.end(),
    });
    res.on('close', () => {
      clearInterval(heartbeat);
      unsubscribe();
    });
  }
}
