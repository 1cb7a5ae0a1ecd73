/**
 * The studio's webhook endpoint, as the fault suite sees it: node:http on 127.0.0.1 (allow-listed
 * for the farm through WEBHOOK_ALLOW_HOSTS) that answers 200 to every POST, checks each
 * signature and counts deliveries per event id.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verify } from '@celfarm/webhooks';

export interface Delivery {
  /** `webhook-id`: the event id. */
  id: string;
  type: string;
  shotId?: string;
  frame?: number;
  at: number;
  /** Signature check against the subscription's secret ('' when it verified). */
  badSignature: string;
}

export class WebhookReceiver {
  readonly deliveries: Delivery[] = [];
  /** Set once the subscription exists (its secret is only known then). */
  secret = '';
  private server?: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        let badSignature = '';
        try {
          verify(this.secret, req.headers, body);
        } catch (e) {
          badSignature = e instanceof Error ? e.message : String(e);
        }
        let event: { id?: string; type?: string; shotId?: string; frame?: number } = {};
        try {
          event = JSON.parse(body) as typeof event;
        } catch {
          badSignature ||= 'body is not JSON';
        }
        const id = String(req.headers['webhook-id'] ?? event.id ?? '');
        this.deliveries.push({ id, type: event.type ?? '?', shotId: event.shotId, frame: event.frame, at: Date.now(), badSignature });
        res.statusCode = 200;
        res.end('ok');
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** `127.0.0.1:<port>`, for WEBHOOK_ALLOW_HOSTS. */
  get host(): string {
    return new URL(this.url).host;
  }

  /** Deliveries of one shot's events. */
  of(shotId: string): Delivery[] {
    return this.deliveries.filter((d) => d.shotId === shotId);
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server!.close(() => r()));
  }
}
