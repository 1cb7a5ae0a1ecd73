/**
 * Request durations into `celfarm_http_request_duration_seconds`, labelled with the route
 * pattern (`/v1/shots/:id`), never the raw URL, so label cardinality stays bounded.
 */
import type { FastifyInstance } from 'fastify';
import type { FarmMetrics } from '@celfarm/metrics';

export function installHttpMetrics(fastify: FastifyInstance, metrics: FarmMetrics): void {
  fastify.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpDuration.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    done();
  });
}
